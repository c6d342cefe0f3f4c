#include "text/prompt.h"

#include <string.h>

#include "core/bytebuf.h"

const char PROMPT_TEMPLATE_PAPER[] =
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first shows the complete reasoning process step by step, then "
    "provides the final answer in \\boxed{}. The assistant must always follow the format: "
    "'User: [question] Assistant: [detailed reasoning] The final answer is: "
    "\\boxed{[answer]}.' User: {question} Assistant:";

static const char QUESTION_SLOT[] = "{question}";

int chat_style_parse(const char *s, ChatStyle *style, Err *err) {
    if (!strcmp(s, "none"))
        *style = CHAT_NONE;
    else if (!strcmp(s, "llama3"))
        *style = CHAT_LLAMA3;
    else if (!strcmp(s, "chatml") || !strcmp(s, "qwen"))
        *style = CHAT_CHATML;
    else
        return err_set(err, "chat style \"%s\" is not known (expected none, llama3, chatml or qwen)", s);
    return 0;
}

const char *chat_style_name(ChatStyle style) {
    return style == CHAT_LLAMA3 ? "llama3" : style == CHAT_CHATML ? "chatml" : "none";
}

static int is_trim_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Jinja's |trim (Python str.strip on ASCII whitespace for these templates). */
static void append_trimmed(ByteBuf *b, const char *s, size_t n) {
    while (n && is_trim_space(*s)) s++, n--;
    while (n && is_trim_space(s[n - 1])) n--;
    bytebuf_append(b, s, n);
}

static void append_str(ByteBuf *b, const char *s) { bytebuf_append(b, s, strlen(s)); }

int prompt_build(const char *template_text, const char *question, ChatStyle style,
                 const char *system, char **out, Err *err) {
    const size_t ph = sizeof QUESTION_SLOT - 1;
    if (!strstr(template_text, QUESTION_SLOT))
        return err_set(err, "prompt template has no %s placeholder", QUESTION_SLOT);
    ByteBuf body = {0};
    for (const char *p = template_text, *hit; *p; p = hit + ph) {
        hit = strstr(p, QUESTION_SLOT);
        if (!hit) {
            append_str(&body, p);
            break;
        }
        bytebuf_append(&body, p, (size_t)(hit - p));
        append_str(&body, question);
    }
    bytebuf_reserve(&body, 0);
    ByteBuf o = {0};
    switch (style) {
    case CHAT_NONE:
        bytebuf_append(&o, body.p, body.n);
        break;
    case CHAT_LLAMA3:
        if (system) {
            append_str(&o, "<|start_header_id|>system<|end_header_id|>\n\n");
            append_trimmed(&o, system, strlen(system));
            append_str(&o, "<|eot_id|>");
        }
        append_str(&o, "<|start_header_id|>user<|end_header_id|>\n\n");
        append_trimmed(&o, body.p, body.n);
        append_str(&o, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_CHATML:
        if (system) {
            append_str(&o, "<|im_start|>system\n");
            append_str(&o, system);
            append_str(&o, "<|im_end|>\n");
        }
        append_str(&o, "<|im_start|>user\n");
        bytebuf_append(&o, body.p, body.n);
        append_str(&o, "<|im_end|>\n<|im_start|>assistant\n");
        break;
    }
    bytebuf_free(&body);
    bytebuf_reserve(&o, 0);
    *out = o.p;
    return 0;
}

int prompt_check_tokenizer(const Tokenizer *tok, ChatStyle style, Err *err) {
    static const char *const llama3[] = {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", NULL};
    static const char *const chatml[] = {"<|im_start|>", "<|im_end|>", NULL};
    const char *const *need = style == CHAT_LLAMA3 ? llama3 : style == CHAT_CHATML ? chatml : NULL;
    for (int i = 0; need && need[i]; i++) {
        int id = tokenizer_token_id(tok, need[i]);
        if (id < 0 || !tokenizer_is_special(tok, id))
            return err_set(err, "chat style %s needs the special token %s, which this %s tokenizer lacks",
                           chat_style_name(style), need[i], tokenizer_kind(tok));
    }
    return 0;
}
