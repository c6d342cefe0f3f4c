/* softcot reward: score one answer against a gold answer on the paper's scale, so scripts
 * and people can check the answer checker by hand. */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "core/check.h"
#include "rl/reward.h"

static void usage(FILE *out) {
    fputs("usage: softcot reward --gold G --answer A [--boxed]\n"
          "\n"
          "Prints the reward of answer A for gold answer G, first on its line, then the\n"
          "reason: \"100 equivalent\", \"10 not equivalent to the gold answer\" or \"0 ...\".\n"
          "\n"
          "options:\n"
          "  --gold G     the gold final answer (e.g. 1/2, \\frac{\\sqrt3}{2}, (1,2), 1,080)\n"
          "  --answer A   by default the answer phase: the text generated after the prefilled\n"
          "               \"\\boxed{\", up to the brace that closes it (\"7} and more\" scores 7)\n"
          "  --boxed      treat A as free text and score its last \\boxed{...}\n"
          "  -h, --help   show this help\n"
          "\n"
          "Scores (DESIGN.md 1.5): 100 if the box is closed and its content is mathematically\n"
          "equivalent to G, 10 if it is closed but wrong, 0 if no box was closed.\n"
          "The equivalence rules are in docs/reward.md. Exit status: 0, or 2 for usage errors.\n",
          out);
}

static int usage_error(const char *what, const char *arg) {
    fprintf(stderr, "softcot: reward: %s%s%s%s (see softcot reward --help)\n", what, arg ? " '" : "",
            arg ? arg : "", arg ? "'" : "");
    return EXIT_USAGE;
}

int cmd_reward(int argc, char **argv) {
    const char *gold = NULL, *answer = NULL;
    int boxed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return EXIT_OK;
        }
        if (!strcmp(a, "--boxed")) {
            boxed = 1;
            continue;
        }
        int r = arg_value(argc, argv, &i, "--gold", &gold);
        if (r == 0) r = arg_value(argc, argv, &i, "--answer", &answer);
        if (r < 0) return usage_error("missing value for", a);
        if (r == 0) return usage_error("unknown option", a);
    }
    if (!gold) return usage_error("--gold is required", NULL);
    if (!answer) return usage_error("--answer is required", NULL);
    const char *reason;
    int score = reward_explain(answer, gold, boxed, &reason);
    printf("%d %s\n", score, reason);
    return EXIT_OK;
}
