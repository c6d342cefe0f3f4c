/* prompt.h — turning a question into the text a model is prompted with.
 *
 * Defines: the paper's zero-shot prompt template (DESIGN.md §1, "Prompt template"),
 * {question} substitution, and the optional chat wrappings Llama 3
 * (<|start_header_id|>user<|end_header_id|>...) and ChatML/Qwen (<|im_start|>user...).
 * The result is plain text: encode it with tokenizer_encode(..., add_special = 1), which
 * adds Llama 3's <|begin_of_text|> (the chat wrappers therefore do not include it) and
 * turns the chat markers into their special ids.
 * Must not: tokenize, read files or choose a style on its own (the config chooses).
 */
#ifndef SOFTCOT_TEXT_PROMPT_H
#define SOFTCOT_TEXT_PROMPT_H

#include "core/check.h"
#include "text/tokenizer.h"

/* The paper's template; "{question}" marks where the question goes. */
extern const char PROMPT_TEMPLATE_PAPER[];

typedef enum {
    CHAT_NONE,   /* the template text as is */
    CHAT_LLAMA3, /* Llama 3.x instruct */
    CHAT_CHATML  /* Qwen2 / Qwen2.5 instruct (ChatML) */
} ChatStyle;

/* Parses a config value: "none", "llama3", "chatml" or its alias "qwen". */
int chat_style_parse(const char *s, ChatStyle *style, Err *err);
const char *chat_style_name(ChatStyle style);

/* Builds the prompt: template with every "{question}" replaced by question (the
 * template must contain it), then wrapped as a single user turn of the chat style,
 * ending where the assistant's reply begins. system may be NULL (no system turn; note
 * that Hugging Face's Qwen templates insert a default system message when none is
 * given, so pass it explicitly to match them). Llama 3 trims the message contents as
 * its chat template does. *out is malloc'd. */
int prompt_build(const char *template_text, const char *question, ChatStyle style,
                 const char *system, char **out, Err *err);

/* Checks that tok has the special tokens the chat style writes, so a wrong pairing
 * (e.g. ChatML with a Llama 3 tokenizer) fails up front instead of encoding the
 * markers as ordinary text. */
int prompt_check_tokenizer(const Tokenizer *tok, ChatStyle style, Err *err);

#endif
