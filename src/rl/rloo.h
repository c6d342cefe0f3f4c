/* rloo.h — REINFORCE leave-one-out advantages (DESIGN.md §1):
 * A_{b,g} = r_{b,g} - mean_{g' != g} r_{b,g'}, not divided by a standard deviation
 * unless the optional advantage normalisation is asked for.
 * Must not: know where rewards come from or how many ranks hold them.
 */
#ifndef SOFTCOT_RL_RLOO_H
#define SOFTCOT_RL_RLOO_H

/* rewards and adv hold n_groups * group_size values, group-major. group_size >= 2.
 * normalize: divide each group's advantages by the group's reward standard deviation
 * (skipped for a group whose rewards are all equal: its advantages are all zero). */
void rloo_advantages(const float *rewards, int n_groups, int group_size, int normalize, float *adv);

#endif
