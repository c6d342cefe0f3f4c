/* Tokenizer benchmark (not a test): load time of each tokenizer and encode throughput
 * over every GSM8K train question and answer, single thread, best of 3 passes. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fileio.h"
#include "test.h"
#include "text/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(void) {
    char path[1024], *data;
    size_t len;
    Err err;
    snprintf(path, sizeof path, "%s/data/gsm8k/train.jsonl", shared_dir());
    if (file_read_all(path, &data, &len, &err)) {
        printf("bench_tokenizer: skipped: %s\n", err.msg);
        return 0;
    }
    char **texts = NULL;
    size_t n = 0, cap = 0, bytes = 0;
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        cJSON *j = cJSON_Parse(line);
        const char *keys[2] = {"question", "answer"};
        for (int k = 0; k < 2; k++) {
            const cJSON *s = cJSON_GetObjectItem(j, keys[k]);
            if (!cJSON_IsString(s)) continue;
            if (n == cap) texts = realloc(texts, (cap = cap ? 2 * cap : 1024) * sizeof *texts);
            texts[n++] = strdup(s->valuestring);
            bytes += strlen(s->valuestring);
        }
        cJSON_Delete(j);
    }
    free(data);
    printf("bench_tokenizer: GSM8K train, %zu texts (questions and answers), %.2f MB\n", n, bytes / 1e6);
    const char *names[3] = {"llama3", "qwen2", "tok512 (llama2.c)"};
    for (int k = 0; k < 3; k++) {
        double t0 = now();
        Tokenizer *t;
        if (k < 2) {
            snprintf(path, sizeof path, "%s/tokenizers/%s", shared_dir(), names[k]);
            t = tokenizer_load_dir(path, &err);
        } else {
            snprintf(path, sizeof path, "%s/models/stories260K/tok512.bin", shared_dir());
            t = tokenizer_load_llama2c(path, &err);
        }
        double load = now() - t0;
        if (!t) {
            printf("bench_tokenizer: %s: %s\n", names[k], err.msg);
            return 1;
        }
        double best = 1e30;
        size_t tokens = 0;
        for (int rep = 0; rep < 3; rep++) {
            tokens = 0;
            t0 = now();
            for (size_t i = 0; i < n; i++) {
                int *ids, m;
                if (tokenizer_encode(t, texts[i], strlen(texts[i]), 0, &ids, &m, &err)) {
                    printf("bench_tokenizer: %s: %s\n", names[k], err.msg);
                    return 1;
                }
                tokens += (size_t)m;
                free(ids);
            }
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("bench_tokenizer: %-18s load %7.1f ms   encode %6.2f MB/s  (%.2f M tokens/s, %zu tokens, %.3f s)\n",
               names[k], load * 1e3, bytes / best / 1e6, tokens / best / 1e6, tokens, best);
        tokenizer_free(t);
    }
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    return 0;
}
