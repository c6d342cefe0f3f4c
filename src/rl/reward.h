/* reward.h — the math answer checker and the RL reward (DESIGN.md §1.5).
 *
 * Defines:
 *   - boxed_last / answer_phase_content: extract the final answer from free text (last
 *     \boxed{...} or \fbox{...}) or from the answer phase (text generated after the
 *     prefilled "\boxed{", up to the brace that closes it);
 *   - math_equiv: whether two final answers are mathematically equivalent (rules in
 *     docs/reward.md; written in C, deterministic, bounded time and recursion for any
 *     input);
 *   - reward_score / reward_score_text: the paper's scale, 100 equivalent, 10 closed but
 *     wrong, 0 no closed box.
 * Must not: keep state between calls, print, or depend on the model or tokenizer.
 */
#ifndef SOFTCOT_RL_REWARD_H
#define SOFTCOT_RL_REWARD_H

enum { REWARD_CORRECT = 100, REWARD_WRONG = 10, REWARD_NONE = 0 };

/* Content of the last \boxed{...} (or \fbox{...}) in text, with nested braces (escaped
 * \{ \} do not count). Returns 1 and a malloc'd *content if the last box is closed;
 * returns 0 (and *content = NULL) if there is no box or the last one is not closed. */
int boxed_last(const char *text, char **content);

/* answer_text is what followed the prefilled "\boxed{": returns 1 and a malloc'd copy
 * of the text before the '}' that closes that brace, or 0 (*content = NULL) if the text
 * ends first. */
int answer_phase_content(const char *answer_text, char **content);

/* 1 if the two answers are mathematically equivalent, else 0. Symmetric. */
int math_equiv(const char *a, const char *b);

/* Reward of an answer phase (text after the prefilled "\boxed{"): 100, 10 or 0. */
int reward_score(const char *answer_text, const char *gold);

/* Reward of free text (SFT targets, eval of full generations): the last \boxed{}. */
int reward_score_text(const char *full_text, const char *gold);

/* As the two above, with a short static reason ("equivalent", "not equivalent to the
 * gold answer", "no closing brace", "no \boxed{}"); boxed selects reward_score_text. */
int reward_explain(const char *text, const char *gold, int boxed, const char **reason);

#endif
