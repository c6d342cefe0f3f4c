/* commands.h — the subcommands of the softcot binary, one function per file in src/cli/.
 * Each takes the arguments after the subcommand name (argv[0] is the subcommand) and
 * returns the process exit status (see EXIT_* in core/check.h).
 * Must not: be called by anything but src/main.c.
 */
#ifndef SOFTCOT_COMMANDS_H
#define SOFTCOT_COMMANDS_H

int cmd_generate(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_reward(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_analyze(int argc, char **argv);

#endif
