#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/hf_regex.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/bytebuf.h"

struct HfRegex {
    pcre2_code *code;
};

/* Rewrites \s and \S so they mean Unicode White_Space (PCRE2 omits U+0085). Escapes,
 * \Q...\E quoting and character classes are tracked so only real \s/\S change. A \S
 * inside a class cannot be widened and is left as PCRE2 defines it. */
static void widen_space_escapes(const char *p, size_t n, ByteBuf *out) {
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char d = p[i + 1];
            if (d == 'Q') {
                size_t j = i + 2;
                while (j + 1 < n && !(p[j] == '\\' && p[j + 1] == 'E')) j++;
                size_t end = j + 1 < n ? j + 2 : n;
                bytebuf_append(out, p + i, end - i);
                i = end - 1;
            } else if (d == 's') {
                bytebuf_append(out, in_class ? "\\s\\x{85}" : "[\\s\\x{85}]", in_class ? 8 : 10);
                i++;
            } else if (d == 'S' && !in_class) {
                bytebuf_append(out, "[^\\s\\x{85}]", 11);
                i++;
            } else {
                bytebuf_append(out, p + i, 2);
                i++;
            }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            bytebuf_putc(out, c);
            if (i + 1 < n && p[i + 1] == '^') bytebuf_putc(out, p[++i]);
            if (i + 1 < n && p[i + 1] == ']') bytebuf_putc(out, p[++i]);
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && p[i + 1] == ':') {
            size_t j = i + 2;
            while (j + 1 < n && !(p[j] == ':' && p[j + 1] == ']')) j++;
            size_t end = j + 1 < n ? j + 2 : n;
            bytebuf_append(out, p + i, end - i);
            i = end - 1;
            continue;
        }
        if (in_class && c == ']') in_class = 0;
        bytebuf_putc(out, c);
    }
}

HfRegex *hf_regex_compile(const char *pattern, size_t len, int literal, Err *err) {
    ByteBuf buf = {0};
    if (literal)
        bytebuf_append(&buf, pattern, len);
    else
        widen_space_escapes(pattern, len, &buf);
    int code_err;
    PCRE2_SIZE off;
    /* PCRE2_LITERAL refuses PCRE2_UCP (meaningless without metacharacters). */
    uint32_t opts = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)(buf.p ? buf.p : ""), buf.n, opts, &code_err,
                                     &off, NULL);
    bytebuf_free(&buf);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code_err, msg, sizeof msg);
        /* Offsets refer to the rewritten pattern; they differ from the file's only after
         * a \s or \S, and the message text still pinpoints the problem. */
        err_set(err, "invalid regex at offset %zu: %s", (size_t)off, (const char *)msg);
        return NULL;
    }
    /* JIT is an optimisation; the interpreter gives identical results if it fails. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    HfRegex *re = xmalloc(sizeof *re);
    re->code = code;
    return re;
}

void hf_regex_free(HfRegex *re) {
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}

void regex_scratch_free(RegexScratch *s) {
    pcre2_match_data_free(s->match_data);
    pcre2_match_context_free(s->match_ctx);
    pcre2_jit_stack_free(s->jit_stack);
    memset(s, 0, sizeof *s);
}

static void scratch_init(RegexScratch *s) {
    if (s->match_data) return;
    s->match_data = pcre2_match_data_create(1, NULL);
    s->match_ctx = pcre2_match_context_create(NULL);
    CHECK(s->match_data && s->match_ctx);
}

/* JIT matching starts on PCRE2's 32 KiB machine-stack area; only when a long input runs
 * it out is a large JIT stack mapped (doing that on every call costs an mmap/munmap). */
static int grow_jit_stack(RegexScratch *s) {
    if (s->jit_stack) return 0;
    s->jit_stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, NULL);
    CHECK(s->jit_stack);
    pcre2_jit_stack_assign(s->match_ctx, NULL, s->jit_stack);
    return 1;
}

int hf_regex_next(const HfRegex *re, const char *s, size_t n, size_t from, size_t *ms,
                  size_t *me, RegexScratch *scr, Err *err) {
    scratch_init(scr);
    while (from < n) {
        int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK,
                             scr->match_data, scr->match_ctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && grow_jit_stack(scr)) continue;
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return err_set(err, "regex match failed at byte %zu: %s", from, (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(scr->match_data);
        if (ov[1] > ov[0]) {
            *ms = ov[0];
            *me = ov[1];
            return 1;
        }
        /* Empty match: resume after the next character. */
        from = ov[0] + 1;
        while (from < n && ((unsigned char)s[from] & 0xC0) == 0x80) from++;
    }
    return 0;
}
