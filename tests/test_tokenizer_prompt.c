/* Prompt template and chat wrapping: the built-in template is DESIGN.md's text, the
 * question is substituted, and the Llama 3 / ChatML wrappers encode to the special ids
 * the models were trained with. */
#include <stdlib.h>
#include <string.h>

#include "core/fileio.h"
#include "test.h"
#include "text/prompt.h"
#include "text/tokenizer.h"

static void test_template(void) {
    char path[1024], *design;
    size_t len;
    Err err;
    snprintf(path, sizeof path, "%s/DESIGN.md", shared_dir());
    if (file_read_all(path, &design, &len, &err)) {
        TEST_EXPECT(0, "DESIGN.md readable", "%s", err.msg);
        return;
    }
    /* The template is the backquoted line that follows the "Prompt template" heading. */
    char *h = strstr(design, "### Prompt template"), *start = h ? strstr(h, "\n`") : NULL;
    char *end = start ? strchr(start + 2, '`') : NULL;
    int ok = end && (size_t)(end - start - 2) == strlen(PROMPT_TEMPLATE_PAPER) &&
             !memcmp(start + 2, PROMPT_TEMPLATE_PAPER, strlen(PROMPT_TEMPLATE_PAPER));
    TEST_EXPECT(ok, "PROMPT_TEMPLATE_PAPER is DESIGN.md's template verbatim", "differs from DESIGN.md");
    free(design);

    char *p = NULL;
    int r = prompt_build(PROMPT_TEMPLATE_PAPER, "What is 2+2?", CHAT_NONE, NULL, &p, &err);
    const char *tail = "User: What is 2+2? Assistant:";
    TEST_EXPECT(!r && strlen(p) > strlen(tail) && !strcmp(p + strlen(p) - strlen(tail), tail) &&
                    strstr(p, "\\boxed{[answer]}.' User:"),
                "question substituted, \\boxed{} left alone", "got \"%s\"", p ? p : "(null)");
    free(p);
    p = NULL;
    r = prompt_build("Q: {question}\nA: {question}?", "x{question}", CHAT_NONE, NULL, &p, &err);
    TEST_EXPECT(!r && !strcmp(p, "Q: x{question}\nA: x{question}?"), "every placeholder replaced, once",
                "got \"%s\"", p ? p : "(null)");
    free(p);
    r = prompt_build("no placeholder", "q", CHAT_NONE, NULL, &p, &err);
    TEST_EXPECT(r == -1 && strstr(err.msg, "{question}"), "template without {question} is an error", "%s", err.msg);

    ChatStyle s;
    int ok3 = !chat_style_parse("llama3", &s, &err) && s == CHAT_LLAMA3 && !chat_style_parse("qwen", &s, &err) &&
              s == CHAT_CHATML && !chat_style_parse("none", &s, &err) && s == CHAT_NONE &&
              chat_style_parse("gpt", &s, &err) == -1;
    TEST_EXPECT(ok3, "chat style names", "%s", err.msg);
}

static int count(const int *ids, int n, int id) {
    int c = 0;
    for (int i = 0; i < n; i++) c += ids[i] == id;
    return c;
}

static void test_chat(const Tokenizer *l3, const Tokenizer *qw) {
    Err err;
    char *p = NULL;
    int *ids = NULL, n = 0;
    int r = prompt_build("{question}", "  What is 2+2?\n", CHAT_LLAMA3, NULL, &p, &err);
    const char *want = "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                       "<|start_header_id|>assistant<|end_header_id|>\n\n";
    TEST_EXPECT(!r && !strcmp(p, want), "llama3 chat text (content trimmed)", "got \"%s\"", p ? p : "(null)");
    r = r ? r : tokenizer_encode(l3, p, strlen(p), 1, &ids, &n, &err);
    int user = tokenizer_token_id(l3, "user"), asst = tokenizer_token_id(l3, "assistant");
    int nl2 = tokenizer_token_id(l3, "\xC4\x8A\xC4\x8A"); /* "ĊĊ" = "\n\n" */
    int ok = !r && n > 8 && ids[0] == 128000 && ids[1] == 128006 && ids[2] == user && ids[3] == 128007 &&
             ids[n - 4] == 128006 && ids[n - 3] == asst && ids[n - 2] == 128007 && ids[n - 1] == nl2 &&
             count(ids, n, 128009) == 1 && count(ids, n, 128000) == 1;
    TEST_EXPECT(ok, "llama3 chat encodes to <|begin_of_text|><|start_header_id|>user... assistant<|end_header_id|>\\n\\n",
                "%d ids", n);
    free(p), free(ids);
    p = NULL, ids = NULL;

    r = prompt_build("{question}", "Hi", CHAT_CHATML, "You are a helpful assistant.", &p, &err);
    want = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\n";
    TEST_EXPECT(!r && !strcmp(p, want), "chatml text with a system turn", "got \"%s\"", p ? p : "(null)");
    r = r ? r : tokenizer_encode(qw, p, strlen(p), 1, &ids, &n, &err);
    ok = !r && n > 6 && ids[0] == 151644 && count(ids, n, 151644) == 3 && count(ids, n, 151645) == 2 &&
         ids[n - 1] == tokenizer_token_id(qw, "\xC4\x8A") && ids[n - 2] == tokenizer_token_id(qw, "assistant");
    TEST_EXPECT(ok, "chatml encodes to <|im_start|>... <|im_start|>assistant\\n with qwen2", "%d ids", n);
    free(p), free(ids);

    TEST_EXPECT(!prompt_check_tokenizer(l3, CHAT_LLAMA3, &err) && !prompt_check_tokenizer(qw, CHAT_CHATML, &err) &&
                    !prompt_check_tokenizer(qw, CHAT_NONE, &err),
                "matching chat style and tokenizer pass the check", "%s", err.msg);
    r = prompt_check_tokenizer(l3, CHAT_CHATML, &err);
    TEST_EXPECT(r == -1 && strstr(err.msg, "<|im_start|>"), "chatml with a llama3 tokenizer is refused", "%s", err.msg);
}

int main(void) {
    test_template();
    char path[1024];
    Err err;
    snprintf(path, sizeof path, "%s/tokenizers/llama3", shared_dir());
    Tokenizer *l3 = tokenizer_load_dir(path, &err);
    TEST_EXPECT(l3, "load llama3", "%s", err.msg);
    snprintf(path, sizeof path, "%s/tokenizers/qwen2", shared_dir());
    Tokenizer *qw = tokenizer_load_dir(path, &err);
    TEST_EXPECT(qw, "load qwen2", "%s", err.msg);
    if (l3 && qw) test_chat(l3, qw);
    tokenizer_free(l3);
    tokenizer_free(qw);
    return test_finish();
}
