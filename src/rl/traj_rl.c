#include "rl/traj_rl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "io/trajectory.h"

struct TrajRL {
    TrajWriter *w;
    Dist *d;
    int topk, mode;
    int n_rollout_cols; /* N_ROLLOUT_COLS, or N_ROLLOUT_COLS_V1 for a file resumed from an older softcot */
};

enum { T_STEPS = 0, T_ROLLOUTS = 1 };

/* /steps columns, in the order traj_rl_append fills them. */
static const TrajColumn STEP_COLS[] = {
    {"step", TRAJ_I64, 1, 0, "0-based training step"},
    {"reward_mean", TRAJ_F32, 1, 0, "mean reward of the step's B*G rollouts (0/10/100 scale)"},
    {"reward_min", TRAJ_F32, 1, 0, "smallest reward"},
    {"reward_max", TRAJ_F32, 1, 0, "largest reward"},
    {"frac_correct", TRAJ_F32, 1, 0, "fraction of rollouts with reward 100"},
    {"cot_len", TRAJ_F32, 1, 0, "mean CoT length (positions)"},
    {"ans_len", TRAJ_F32, 1, 0, "mean answer length (tokens)"},
    {"frac_stop_string", TRAJ_F32, 1, 0, "fraction of CoTs ended by the stop string"},
    {"frac_stop_length", TRAJ_F32, 1, 0, "fraction of CoTs ended by cot_max"},
    {"frac_stop_eos", TRAJ_F32, 1, 0, "fraction of CoTs ended by EOS"},
    {"logp_cot", TRAJ_F32, 1, 0, "mean CoT log-probability term per rollout (nats; Gaussian term for soft/fuzzy)"},
    {"logp_ans", TRAJ_F32, 1, 0, "mean answer log-probability per rollout (nats)"},
    {"loss", TRAJ_F32, 1, 0, "RL loss -(1/BG) sum A*l"},
    {"grad_norm", TRAJ_F32, 1, 0, "L2 norm of the all-reduced gradient before clipping"},
    {"lr", TRAJ_F32, 1, 0, "learning rate used"},
    {"sigma", TRAJ_F32, 1, 0, "noise std of soft/fuzzy CoT inputs (0 for hard)"},
    {"gen_tok_s", TRAJ_F32, 1, 0, "generation throughput, forward positions per second (all ranks)"},
    {"train_tok_s", TRAJ_F32, 1, 0, "replay throughput, positions per second (all ranks)"},
    {"step_seconds", TRAJ_F32, 1, 0, "wall time of the step on rank 0 (s)"},
    {"skipped", TRAJ_I32, 1, 0, "1 if the update was skipped (non-finite loss or gradient)"},
};
enum { N_STEP_COLS = sizeof STEP_COLS / sizeof STEP_COLS[0] };

enum {
    R_STEP, R_PROMPT, R_SAMPLE, R_RANK, R_MODE, R_REWARD, R_ADV, R_CORRECT, R_COT_LEN, R_ANS_LEN,
    R_COT_STOP, R_ANS_STOP, R_LOGP_COT, R_LOGP_ANS, R_SHADOW, R_TOPK_IDS, R_TOPK_PROBS, R_ENTROPY,
    R_NOISE, R_COT_TEXT, R_ANS_TEXT, R_ANS_TOKENS,
    /* Added after the first release: optional for readers (docs/hdf5-schema.md). New
     * columns go at the end, so an older file's schema is a prefix of this one. */
    R_MIX_ENTROPY, R_PROMPT_TOKENS, N_ROLLOUT_COLS
};
enum { N_ROLLOUT_COLS_V1 = R_MIX_ENTROPY };

static void rollout_cols(TrajColumn *c, int topk) {
    const int K = topk > 0 ? topk : 1;
    TrajColumn cols[N_ROLLOUT_COLS] = {
        [R_STEP] = {"step", TRAJ_I64, 1, 0, "0-based training step"},
        [R_PROMPT] = {"prompt_index", TRAJ_I32, 1, 0, "index of the problem in the training set"},
        [R_SAMPLE] = {"sample_index", TRAJ_I32, 1, 0, "sample g in 0..G-1 of the prompt's group"},
        [R_RANK] = {"rank", TRAJ_I32, 1, 0, "MPI rank that generated and wrote the rollout"},
        [R_MODE] = {"mode", TRAJ_I32, 1, 0, "CoT mode: 0 hard, 1 soft, 2 fuzzy"},
        [R_REWARD] = {"reward", TRAJ_F32, 1, 0, "100 correct, 10 closed box but wrong, 0 no closed box"},
        [R_ADV] = {"advantage", TRAJ_F32, 1, 0, "RLOO advantage r - mean of the other G-1 rewards"},
        [R_CORRECT] = {"correct", TRAJ_I32, 1, 0, "1 if reward == 100"},
        [R_COT_LEN] = {"cot_len", TRAJ_I32, 1, 0, "CoT positions"},
        [R_ANS_LEN] = {"ans_len", TRAJ_I32, 1, 0, "answer tokens"},
        [R_COT_STOP] = {"cot_stop", TRAJ_I32, 1, 0, "why the CoT ended: 0 stop string, 1 cot_max, 2 EOS"},
        [R_ANS_STOP] = {"ans_stop", TRAJ_I32, 1, 0, "why the answer ended: 0 closing brace, 1 EOS, 2 ans_max"},
        [R_LOGP_COT] = {"logp_cot", TRAJ_F32, 1, 0, "CoT log-probability term (nats; Gaussian term without constant for soft/fuzzy)"},
        [R_LOGP_ANS] = {"logp_ans", TRAJ_F32, 1, 0, "answer log-probability (nats)"},
        [R_SHADOW] = {"shadow", TRAJ_I32, 1, 1, "per CoT position: hard: sampled token; soft/fuzzy: argmax of the logits"},
        [R_TOPK_IDS] = {"topk_ids", TRAJ_I32, K, 1, "per CoT position: ids of the most probable tokens of the mixture (hard: sampling) distribution, -1 if unused"},
        [R_TOPK_PROBS] = {"topk_probs", TRAJ_F32, K, 1, "per CoT position: their probabilities"},
        [R_ENTROPY] = {"entropy", TRAJ_F32, 1, 1, "per CoT position: entropy of softmax(z) at temperature 1 (nats)"},
        [R_NOISE] = {"noise_norm", TRAJ_F32, 1, 1, "per CoT position: ||h~ - mu|| of the fed input (0 for hard)"},
        [R_COT_TEXT] = {"cot_text", TRAJ_U8, 1, 1, "decoded shadow text of the CoT (UTF-8 bytes)"},
        [R_ANS_TEXT] = {"answer_text", TRAJ_U8, 1, 1, "decoded answer after the prefilled \\boxed{ (UTF-8 bytes)"},
        [R_ANS_TOKENS] = {"answer_tokens", TRAJ_I32, 1, 1, "answer token ids"},
        [R_MIX_ENTROPY] = {"mix_entropy", TRAJ_F32, 1, 1, "per CoT position: entropy of softmax(z/tau), the distribution the input was mixed (soft/fuzzy) or sampled (hard) from (nats; 0 for greedy hard); exp of it is the effective number of tokens"},
        [R_PROMPT_TOKENS] = {"prompt_tokens", TRAJ_I32, 1, 1, "prompt token ids fed before the CoT (template and BOS included)"},
    };
    memcpy(c, cols, sizeof cols);
}

int traj_rl_open(Dist *d, const char *path, int next_step, const TrajRLInfo *info, TrajRL **out,
                 Err *note, Err *err) {
    TrajColumn rcols[N_ROLLOUT_COLS];
    rollout_cols(rcols, info->topk);
    TrajTable tables[2] = {
        {"steps", STEP_COLS, N_STEP_COLS, "one row per training step"},
        {"rollouts", rcols, N_ROLLOUT_COLS, "one row per rollout of every traj_every-th step"},
    };
    TrajRL *t = xcalloc(1, sizeof *t);
    t->d = d;
    t->topk = info->topk > 0 ? info->topk : 1;
    CotMode m;
    t->mode = cot_mode_parse(info->mode, &m, NULL) == 0 ? (int)m : -1;
    int rc = -1;
    t->n_rollout_cols = N_ROLLOUT_COLS;
    if (note) note->msg[0] = '\0';
    if (next_step > 0 && file_exists(path)) {
        rc = traj_open_append(d, path, tables, 2, &t->w, err);
        if (rc != 0) {
            /* A run started by an older softcot keeps its columns: continue the file
             * without the newer ones rather than set it aside. */
            Err e1 = *err;
            tables[1].n_cols = N_ROLLOUT_COLS_V1;
            rc = traj_open_append(d, path, tables, 2, &t->w, err);
            if (rc == 0) t->n_rollout_cols = N_ROLLOUT_COLS_V1;
            else *err = e1, tables[1].n_cols = N_ROLLOUT_COLS;
        }
        if (rc == 0) rc = traj_truncate_to_step(t->w, next_step - 1, err);
        if (rc != 0) {
            /* A hard kill during an append can leave HDF5 metadata unreadable: keep the
             * damaged file for inspection and start a new one rather than refuse to run. */
            char *aside = xmalloc(strlen(path) + 32);
            sprintf(aside, "%s.unreadable-%d", path, next_step);
            if (d->rank == 0) rename(path, aside);
            dist_barrier(d);
            if (note) err_set(note, "%s (moved to %s; a new trajectory file starts at step %d)", err->msg, aside, next_step);
            free(aside);
        }
    }
    if (rc != 0) {
        t->n_rollout_cols = N_ROLLOUT_COLS;
        tables[1].n_cols = N_ROLLOUT_COLS;
        IoAttr attrs[] = {
            {.name = "mode", .type = IO_ATTR_STR, .str = info->mode},
            {.name = "batch_prompts", .type = IO_ATTR_I64, .i64 = info->batch_prompts},
            {.name = "group_size", .type = IO_ATTR_I64, .i64 = info->group_size},
            {.name = "topk", .type = IO_ATTR_I64, .i64 = t->topk},
            {.name = "seed", .type = IO_ATTR_I64, .i64 = (int64_t)info->seed},
            {.name = "config", .type = IO_ATTR_STR, .str = info->config_text},
        };
        /* Collective writes of deflate-filtered chunks hung in about 1 of 8 two-rank runs
         * with HDF5 1.10.8 (ranks disagreeing inside H5D__chunk_collective_write), so
         * multi-rank runs write uncompressed; the file's "compression" attribute says so. */
        rc = traj_create(d, path, tables, 2, attrs, (int)(sizeof attrs / sizeof attrs[0]), d->size > 1 ? 0 : 4,
                         &t->w, err);
    }
    /* Until its first flush an MPI-IO file has no superblock on disk: make it readable
     * by `softcot analyze` from the start, not only after the first step. */
    if (rc == 0 && traj_flush(t->w, err)) {
        Err ignore;
        traj_close(t->w, &ignore);
        rc = -1;
    }
    if (rc) {
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int traj_rl_append(TrajRL *t, const StepStats *s, const RolloutBatch *b, const float *adv,
                   int with_rollouts, Err *err) {
    /* /steps: rank 0 writes the row (the statistics are already global). */
    const int64_t srows = t->d->rank == 0 ? 1 : 0;
    int64_t step = s->step;
    float f[N_STEP_COLS];
    const double vals[] = {s->reward_mean, s->reward_min, s->reward_max, s->frac_correct, s->cot_len,
                           s->ans_len, s->frac_stop_string, s->frac_stop_length, s->frac_stop_eos,
                           s->logp_cot, s->logp_ans, s->loss, s->grad_norm, s->lr, s->sigma,
                           s->gen_tokens / (s->gen_seconds > 0 ? s->gen_seconds : 1e-9),
                           s->train_tokens / (s->train_seconds > 0 ? s->train_seconds : 1e-9),
                           s->step_seconds};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) f[i] = (float)vals[i];
    int32_t skipped = s->skipped;
    TrajData sd[N_STEP_COLS];
    sd[0] = (TrajData){&step, NULL};
    for (int i = 1; i < N_STEP_COLS - 1; i++) sd[i] = (TrajData){&f[i - 1], NULL};
    sd[N_STEP_COLS - 1] = (TrajData){&skipped, NULL};
    if (traj_append(t->w, T_STEPS, sd, srows, err)) return -1;
    /* Flushing after every step keeps the file on disk readable (`softcot analyze`,
     * h5py) while the run is still writing it: a metadata write per step, which did not
     * change the wall time of a 30-step 2-rank test run measurably. */
    if (!with_rollouts) return traj_flush(t->w, err);

    const int n = b->n, K = t->topk;
    int64_t total_cot = 0, total_cot_text = 0, total_ans_text = 0, total_ans_tok = 0, total_prompt = 0;
    for (int i = 0; i < n; i++) {
        total_cot += b->r[i].cot_len;
        total_prompt += b->r[i].n_prompt;
        total_cot_text += (int64_t)strlen(b->r[i].cot_text);
        total_ans_text += (int64_t)strlen(b->r[i].ans_text);
        total_ans_tok += b->r[i].ans_len;
    }
    const size_t N = (size_t)(n ? n : 1), C = (size_t)(total_cot ? total_cot : 1);
    int64_t *steps = xmalloc(N * sizeof(int64_t)), *cot_lens = xmalloc(N * sizeof(int64_t));
    int64_t *cot_text_lens = xmalloc(N * sizeof(int64_t)), *ans_text_lens = xmalloc(N * sizeof(int64_t));
    int64_t *ans_tok_lens = xmalloc(N * sizeof(int64_t));
    int32_t *i32[7];
    for (int k = 0; k < 7; k++) i32[k] = xmalloc(N * sizeof(int32_t));
    int32_t *cot_stop = xmalloc(N * sizeof(int32_t)), *ans_stop = xmalloc(N * sizeof(int32_t));
    float *f32[5];
    for (int k = 0; k < 5; k++) f32[k] = xmalloc(N * sizeof(float));
    int32_t *shadow = xmalloc(C * sizeof(int32_t)), *topk_ids = xmalloc(C * K * sizeof(int32_t));
    float *topk_probs = xmalloc(C * K * sizeof(float)), *entropy = xmalloc(C * sizeof(float));
    float *noise = xmalloc(C * sizeof(float)), *mix_entropy = xmalloc(C * sizeof(float));
    int32_t *prompt_tok = xmalloc((size_t)(total_prompt ? total_prompt : 1) * sizeof(int32_t));
    int64_t *prompt_lens = xmalloc(N * sizeof(int64_t));
    uint8_t *cot_text = xmalloc((size_t)total_cot_text + 1), *ans_text = xmalloc((size_t)total_ans_text + 1);
    int32_t *ans_tok = xmalloc((size_t)(total_ans_tok ? total_ans_tok : 1) * sizeof(int32_t));
    int64_t pos = 0, ct = 0, at = 0, ak = 0, pk = 0;
    for (int i = 0; i < n; i++) {
        const Rollout *r = &b->r[i];
        steps[i] = s->step;
        i32[0][i] = r->prompt_index;
        i32[1][i] = r->sample_index;
        i32[2][i] = t->d->rank;
        i32[3][i] = t->mode;
        i32[4][i] = r->reward >= 100.0f;
        i32[5][i] = r->cot_len;
        i32[6][i] = r->ans_len;
        cot_stop[i] = (int32_t)r->cot_stop;
        ans_stop[i] = (int32_t)r->ans_stop;
        f32[0][i] = r->reward;
        f32[1][i] = adv[i];
        f32[2][i] = r->logp_cot;
        f32[3][i] = r->logp_ans;
        cot_lens[i] = r->cot_len;
        for (int p = 0; p < r->cot_len; p++, pos++) {
            shadow[pos] = r->cot_tokens[p];
            entropy[pos] = r->cot_entropy ? r->cot_entropy[p] : 0.0f;
            noise[pos] = r->noise_norm ? r->noise_norm[p] : 0.0f;
            mix_entropy[pos] = r->mix_entropy ? r->mix_entropy[p] : 0.0f;
            for (int k = 0; k < K; k++) {
                topk_ids[pos * K + k] = r->topk_ids ? r->topk_ids[p * K + k] : -1;
                topk_probs[pos * K + k] = r->topk_probs ? r->topk_probs[p * K + k] : 0.0f;
            }
        }
        size_t lc = strlen(r->cot_text), la = strlen(r->ans_text);
        memcpy(cot_text + ct, r->cot_text, lc);
        memcpy(ans_text + at, r->ans_text, la);
        ct += (int64_t)lc;
        at += (int64_t)la;
        cot_text_lens[i] = (int64_t)lc;
        ans_text_lens[i] = (int64_t)la;
        for (int j = 0; j < r->ans_len; j++) ans_tok[ak++] = r->ans_tokens[j];
        ans_tok_lens[i] = r->ans_len;
        for (int j = 0; j < r->n_prompt; j++) prompt_tok[pk++] = r->prompt[j];
        prompt_lens[i] = r->n_prompt;
    }
    TrajData rd[N_ROLLOUT_COLS] = {
        [R_STEP] = {steps, NULL}, [R_PROMPT] = {i32[0], NULL}, [R_SAMPLE] = {i32[1], NULL},
        [R_RANK] = {i32[2], NULL}, [R_MODE] = {i32[3], NULL}, [R_REWARD] = {f32[0], NULL},
        [R_ADV] = {f32[1], NULL}, [R_CORRECT] = {i32[4], NULL}, [R_COT_LEN] = {i32[5], NULL},
        [R_ANS_LEN] = {i32[6], NULL}, [R_COT_STOP] = {cot_stop, NULL}, [R_ANS_STOP] = {ans_stop, NULL},
        [R_LOGP_COT] = {f32[2], NULL}, [R_LOGP_ANS] = {f32[3], NULL},
        [R_SHADOW] = {shadow, cot_lens}, [R_TOPK_IDS] = {topk_ids, cot_lens},
        [R_TOPK_PROBS] = {topk_probs, cot_lens}, [R_ENTROPY] = {entropy, cot_lens},
        [R_NOISE] = {noise, cot_lens}, [R_COT_TEXT] = {cot_text, cot_text_lens},
        [R_ANS_TEXT] = {ans_text, ans_text_lens}, [R_ANS_TOKENS] = {ans_tok, ans_tok_lens},
        [R_MIX_ENTROPY] = {mix_entropy, cot_lens}, [R_PROMPT_TOKENS] = {prompt_tok, prompt_lens},
    };
    int rc = traj_append(t->w, T_ROLLOUTS, rd, n, err);
    if (rc == 0) rc = traj_flush(t->w, err);
    free(steps), free(cot_lens), free(cot_text_lens), free(ans_text_lens), free(ans_tok_lens);
    for (int k = 0; k < 7; k++) free(i32[k]);
    for (int k = 0; k < 5; k++) free(f32[k]);
    free(shadow), free(topk_ids), free(topk_probs), free(entropy), free(noise), free(cot_text);
    free(ans_text), free(ans_tok), free(cot_stop), free(ans_stop), free(mix_entropy), free(prompt_tok);
    free(prompt_lens);
    return rc;
}

int traj_rl_flush(TrajRL *t, Err *err) { return traj_flush(t->w, err); }

int traj_rl_close(TrajRL *t, Err *err) {
    int rc = traj_close(t->w, err);
    free(t);
    return rc;
}
