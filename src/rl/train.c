#include "rl/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/lr_schedule.h"
#include "core/rng.h"
#include "rl/rloo.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

void train_state_init(TrainState *st, Model *model) {
    memset(st, 0, sizeof *st);
    st->model = model;
    const size_t bytes = model->layout.n_floats * sizeof(float);
    st->grads = dev_alloc(bytes);
    st->adam_m = dev_alloc(bytes);
    st->adam_v = dev_alloc(bytes);
}

void train_state_free(TrainState *st) {
    dev_free(st->grads);
    dev_free(st->adam_m);
    dev_free(st->adam_v);
    if (st->replay_ready) replay_free(&st->replay);
    memset(st, 0, sizeof *st);
}

void train_epoch_order(uint64_t seed, int64_t epoch, int64_t n_tasks, int64_t *perm) {
    /* Fisher-Yates driven by the data stream of that epoch. */
    RngKey key = {.seed = seed, .step = (uint32_t)epoch, .purpose = RNG_PURPOSE_DATA};
    for (int64_t i = 0; i < n_tasks; i++) perm[i] = i;
    for (int64_t i = n_tasks - 1; i > 0; i--) {
        int64_t j = (int64_t)(rng_uniform(key, (uint32_t)i) * (float)(i + 1));
        if (j > i) j = i;
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Sum of statistics over ranks, in one reduction. */
enum { S_REWARD, S_CORRECT, S_COT, S_ANS, S_STOP_STR, S_STOP_LEN, S_STOP_EOS, S_LOGP_COT,
       S_LOGP_ANS, S_GEN_TOK, S_TRAIN_TOK, S_COUNT };

int train_step(TrainState *st, const TrainParams *p, const TaskSet *tasks, const Tokenizer *tok,
               RewardFn reward, Dist *dist, StepStats *stats, RolloutBatch *out,
               float **advantages_out, Err *err) {
    Model *m = st->model;
    const int B = p->batch_prompts, G = p->group_size, total = B * G;
    const size_t P = m->layout.n_floats;
    const double t_start = now();
    memset(stats, 0, sizeof *stats);
    stats->step = st->step;

    /* 1. prompts of this step and this rank's share of the rollouts. Global rollout k =
     *    b * G + g. Ranks own whole chunks of gen_batch consecutive rollouts, and each
     *    chunk is generated as one batch: a chunk's batch composition, hence every float
     *    of its rollouts, is the same whatever the number of ranks (BLAS results depend
     *    on the batch shape, so sharding single rollouts would not be reproducible).
     *    Shards are contiguous in k, so gathered rewards come back in k order. */
    const int chunk = p->gen_batch > 0 ? p->gen_batch : total;
    const int64_t n_chunks = (total + chunk - 1) / chunk;
    int64_t c0, c1;
    dist_shard(n_chunks, dist->rank, dist->size, &c0, &c1);
    int64_t k0 = c0 * chunk, k1 = c1 * chunk < total ? c1 * chunk : total;
    if (k0 > total) k0 = total;
    stats->first_rollout = k0;
    RolloutRequest *req = xcalloc((size_t)B, sizeof *req);
    int64_t *task_of = xmalloc((size_t)B * sizeof(int64_t));
    int64_t *perm = xmalloc((size_t)tasks->n * sizeof(int64_t)), perm_epoch = -1;
    int n_req = 0;
    for (int b = 0; b < B; b++) {
        /* the step's prompts may straddle an epoch boundary */
        const int64_t pos = st->cursor + b, epoch = pos / tasks->n;
        if (epoch != perm_epoch) train_epoch_order(p->seed, perm_epoch = epoch, tasks->n, perm);
        task_of[b] = perm[pos % tasks->n];
        int64_t lo = (int64_t)b * G > k0 ? (int64_t)b * G : k0;
        int64_t hi = (int64_t)(b + 1) * G < k1 ? (int64_t)(b + 1) * G : k1;
        if (hi <= lo) continue;
        int64_t t = task_of[b];
        req[n_req++] = (RolloutRequest){.prompt_index = (int)t, .prompt = tasks->prompt_ids[t],
                                        .n_prompt = tasks->prompt_len[t],
                                        .first_sample = (int)(lo - (int64_t)b * G),
                                        .n_samples = (int)(hi - lo)};
    }

    free(perm);

    /* 2. rollouts */
    const float sigma = p->mode == COT_HARD ? 0.0f : rollout_sigma(m, p->noise_gamma);
    stats->sigma = sigma;
    RolloutConfig rc = {.mode = p->mode, .cot_temperature = p->cot_temperature, .sigma = sigma,
                        .ans_temperature = p->ans_temperature, .cot_max = p->cot_max,
                        .ans_max = p->ans_max, .stop_string = p->stop_string,
                        .prefill = p->prefill, .n_prefill = p->n_prefill,
                        .prefill_long = p->prefill_long, .n_prefill_long = p->n_prefill_long,
                        .seed = p->seed, .step = st->step, .record_entropy = 1,
                        .record_topk = p->record_topk};
    const double t_gen = now();
    int rc_gen = rollouts_generate(m, tok, &rc, req, n_req, chunk, out, err);
    free(req);
    if (rc_gen) {
        free(task_of);
        return -1;
    }
    const int n = out->n;
    stats->gen_seconds = now() - t_gen;

    /* 3. rewards, gathered so every rank sees every group */
    float *mine = xmalloc((size_t)(n ? n : 1) * sizeof(float));
    for (int i = 0; i < n; i++) {
        Rollout *r = &out->r[i];
        int b = (int)((k0 + i) / G);
        r->reward = (float)reward(r->ans_text, tasks->gold[task_of[b]]);
        mine[i] = r->reward;
    }
    float *all_rewards;
    int64_t n_all;
    dist_allgatherv_f32(dist, mine, n, &all_rewards, &n_all, NULL);
    CHECK(n_all == total);
    float *adv_all = xmalloc((size_t)total * sizeof(float));
    rloo_advantages(all_rewards, B, G, p->adv_norm, adv_all);
    float *adv = xmalloc((size_t)(n ? n : 1) * sizeof(float));
    float *weights = xmalloc((size_t)(n ? n : 1) * sizeof(float));
    for (int i = 0; i < n; i++) {
        adv[i] = adv_all[k0 + i];
        weights[i] = -adv[i] / (float)total; /* L = -(1/BG) sum A * l */
    }

    /* 4. replay in micro-batches, accumulating gradients */
    ReplayConfig rpc = {.mode = p->mode, .cot_temperature = p->cot_temperature, .sigma = sigma,
                        .ans_temperature = p->ans_temperature, .prefill = p->prefill,
                        .n_prefill = p->n_prefill, .prefill_long = p->prefill_long,
                        .n_prefill_long = p->n_prefill_long,
                        .ref = p->kl_coef > 0 ? p->ref : NULL, .kl_scale = p->kl_coef / (float)total};
    int longest = 0;
    for (int t = 0; t < tasks->n; t++) longest = tasks->prompt_len[t] > longest ? tasks->prompt_len[t] : longest;
    const int max_len = longest + p->cot_max + p->n_prefill_long + p->ans_max;
    if (!st->replay_ready) {
        int rows = p->micro_batch_tokens > max_len ? p->micro_batch_tokens : max_len;
        replay_init(&st->replay, &m->cfg, rows, total, max_len);
        st->replay_ready = 1;
    }
    const double t_train = now();
    dev_zero(st->grads, P * sizeof(float));
    double logp_cot = 0, logp_ans = 0, loss = 0, kl_sum = 0;
    double *lc = xmalloc((size_t)(n ? n : 1) * sizeof(double)), *la = xmalloc((size_t)(n ? n : 1) * sizeof(double));
    double *kl = xcalloc((size_t)(n ? n : 1), sizeof(double));
    long train_tokens = 0;
    for (int i = 0; i < n;) {
        int j = i, rows = 0;
        while (j < n && (j == i || rows + replay_length(&out->r[j], &rpc) <= st->replay.max_rows)) {
            rows += replay_length(&out->r[j], &rpc);
            j++;
        }
        replay_accumulate_kl(m, &st->replay, &rpc, out->r + i, weights + i, j - i, st->grads, lc + i, la + i, kl + i);
        train_tokens += rows;
        i = j;
    }
    for (int i = 0; i < n; i++) {
        out->r[i].logp_cot = (float)lc[i];
        out->r[i].logp_ans = (float)la[i];
        logp_cot += lc[i];
        logp_ans += la[i];
        loss += weights[i] * (lc[i] + la[i]) + rpc.kl_scale * kl[i];
        kl_sum += kl[i];
    }
    stats->train_seconds = now() - t_train;

    /* 5. gradient all-reduce: device to device (NCCL) when set up, else MPI, staged
     * through the host when device memory is not host memory */
    const double t_ar = now();
    if (dist->size > 1) {
        if (st->device_allreduce) {
            op_allreduce_sum(st->grads, P);
        } else if (ops_device_is_host()) {
            dist_allreduce_sum_f32(dist, st->grads, P);
        } else {
            float *h = xmalloc(P * sizeof(float));
            dev_download(h, st->grads, P * sizeof(float));
            dist_allreduce_sum_f32(dist, h, P);
            dev_upload(st->grads, h, P * sizeof(float));
            free(h);
        }
    }
    stats->allreduce_seconds = now() - t_ar;

    /* 6. statistics over all ranks */
    double s[S_COUNT] = {0}, rmin = 1e300, rmax = -1e300;
    for (int i = 0; i < n; i++) {
        const Rollout *r = &out->r[i];
        s[S_REWARD] += r->reward;
        s[S_CORRECT] += r->reward >= 100.0f;
        s[S_COT] += r->cot_len;
        s[S_ANS] += r->ans_len;
        s[S_STOP_STR] += r->cot_stop == COT_STOP_STRING;
        s[S_STOP_LEN] += r->cot_stop == COT_STOP_LENGTH;
        s[S_STOP_EOS] += r->cot_stop == COT_STOP_EOS;
    }
    s[S_LOGP_COT] = logp_cot;
    s[S_LOGP_ANS] = logp_ans;
    s[S_GEN_TOK] = (double)out->gen_rows;
    s[S_TRAIN_TOK] = (double)train_tokens;
    dist_allreduce_sum_f64(dist, s, S_COUNT);
    for (int i = 0; i < total; i++) {
        rmin = all_rewards[i] < rmin ? all_rewards[i] : rmin;
        rmax = all_rewards[i] > rmax ? all_rewards[i] : rmax;
    }
    double lsum[2] = {loss, kl_sum};
    dist_allreduce_sum_f64(dist, lsum, 2);
    stats->kl = lsum[1] / total;
    stats->reward_mean = s[S_REWARD] / total;
    stats->reward_min = rmin;
    stats->reward_max = rmax;
    stats->frac_correct = s[S_CORRECT] / total;
    stats->cot_len = s[S_COT] / total;
    stats->ans_len = s[S_ANS] / total;
    stats->frac_stop_string = s[S_STOP_STR] / total;
    stats->frac_stop_length = s[S_STOP_LEN] / total;
    stats->frac_stop_eos = s[S_STOP_EOS] / total;
    stats->logp_cot = s[S_LOGP_COT] / total;
    stats->logp_ans = s[S_LOGP_ANS] / total;
    stats->gen_tokens = s[S_GEN_TOK];
    stats->train_tokens = s[S_TRAIN_TOK];
    stats->loss = lsum[0];

    /* 7. update: non-finite check, optional clipping, AdamW */
    double gnorm = sqrt(op_sumsq(st->grads, P));
    stats->grad_norm = gnorm;
    stats->lr = lr_at(st->step, p->steps, p->warmup, p->lr, p->min_lr_ratio);
    int ok = isfinite(gnorm) && isfinite(stats->loss);
    int status = 0;
    if (!ok) {
        stats->skipped = 1;
        st->bad_steps++;
        if (!p->skip_nonfinite) {
            err_set(err, "step %d: non-finite %s (gradient norm %g, loss %g); set skip_nonfinite = true to skip such steps",
                    st->step, isfinite(stats->loss) ? "gradient" : "loss", gnorm, stats->loss);
            status = -1;
        } else if (st->bad_steps >= p->max_bad_steps) {
            err_set(err, "step %d: %d consecutive steps with a non-finite loss or gradient; aborting",
                    st->step, st->bad_steps);
            status = -1;
        }
    } else {
        st->bad_steps = 0;
        if (p->grad_clip > 0 && gnorm > p->grad_clip) op_scale(st->grads, (float)(p->grad_clip / gnorm), P);
        AdamWParams hp = {.lr = (float)stats->lr, .beta1 = p->beta1, .beta2 = p->beta2,
                          .eps = p->adam_eps, .weight_decay = p->weight_decay,
                          .step = st->step + 1};
        op_adamw(m->params, st->grads, st->adam_m, st->adam_v, P, hp);
    }
    st->step++;
    st->cursor += B;
    stats->step_seconds = now() - t_start;

    free(task_of), free(mine), free(all_rewards), free(adv_all), free(weights), free(lc), free(la), free(kl);
    if (advantages_out) *advantages_out = adv;
    else free(adv);
    return status;
}
