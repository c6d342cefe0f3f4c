/* config.json parsing and writing: real Llama 3.2 and Qwen2.5 configs, defaults, head_dim,
 * a write/read round trip, and bad configs with their exact messages. */
#include "core/fileio.h"
#include "io/hf_config.h"
#include "test_io_util.h"

/* meta-llama/Llama-3.2-1B config.json */
static const char LLAMA32[] =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false, \"attention_dropout\": 0.0,"
    " \"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008, 128009], \"head_dim\": 64,"
    " \"hidden_act\": \"silu\", \"hidden_size\": 2048, \"initializer_range\": 0.02,"
    " \"intermediate_size\": 8192, \"max_position_embeddings\": 131072, \"mlp_bias\": false,"
    " \"model_type\": \"llama\", \"num_attention_heads\": 32, \"num_hidden_layers\": 16,"
    " \"num_key_value_heads\": 8, \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05,"
    " \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0, \"low_freq_factor\": 1.0,"
    " \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}, \"rope_theta\": 500000.0,"
    " \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\", \"transformers_version\": \"4.45.0.dev0\","
    " \"use_cache\": true, \"vocab_size\": 128256}";

/* Qwen/Qwen2.5-0.5B config.json (no head_dim) */
static const char QWEN25[] =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0, \"bos_token_id\": 151643,"
    " \"eos_token_id\": 151643, \"hidden_act\": \"silu\", \"hidden_size\": 896, \"initializer_range\": 0.02,"
    " \"intermediate_size\": 4864, \"max_position_embeddings\": 32768, \"max_window_layers\": 24,"
    " \"model_type\": \"qwen2\", \"num_attention_heads\": 14, \"num_hidden_layers\": 24,"
    " \"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-06, \"rope_scaling\": null, \"rope_theta\": 1000000.0,"
    " \"sliding_window\": 32768, \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\","
    " \"use_cache\": true, \"use_sliding_window\": false, \"vocab_size\": 151936}";

#define WHAT "m/config.json"

static int parse(const char *json, ModelConfig *c, Err *err) { return hf_config_parse(json, strlen(json), WHAT, c, err); }

/* LLAMA32 with one "key": value replaced (value NULL removes the key). */
static int parse_edit(const char *key, const char *value, ModelConfig *c, Err *err) {
    char buf[4096], pat[128];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *at = strstr(LLAMA32, pat);
    if (!at) {
        fprintf(stderr, "no key %s\n", key);
        exit(1);
    }
    /* the old value ends at the next top-level ", \"" or the closing brace */
    const char *end = at + strlen(pat);
    int depth = 0;
    for (; *end; end++) {
        if (*end == '{' || *end == '[') depth++;
        if (*end == '}' || *end == ']') {
            if (depth == 0) break;
            depth--;
        }
        if (*end == ',' && depth == 0) break;
    }
    if (value)
        snprintf(buf, sizeof buf, "%.*s%s%s%s", (int)(at - LLAMA32), LLAMA32, pat, value, end);
    else
        snprintf(buf, sizeof buf, "%.*s%s", (int)(at - LLAMA32), LLAMA32, *end == ',' ? end + 2 : end);
    return parse(buf, c, err);
}

static void test_good(const char *dir) {
    ModelConfig c;
    Err err = {{0}};
    int rc = parse(LLAMA32, &c, &err);
    TEST_EXPECT(rc == 0, "Llama 3.2 1B config parses", "%s", err.msg);
    TEST_EXPECT(c.arch == ARCH_LLAMA && c.dim == 2048 && c.hidden_dim == 8192 && c.n_layers == 16 &&
                    c.n_heads == 32 && c.n_kv_heads == 8 && c.head_dim == 64 && c.vocab_size == 128256 &&
                    c.max_seq == 131072 && c.norm_eps == 1e-5f && c.rope_theta == 500000.0f &&
                    c.tied_embeddings == 1 && c.qkv_bias == 0,
                "Llama 3.2 sizes", "dim=%d ff=%d L=%d H=%d KV=%d hd=%d V=%d", c.dim, c.hidden_dim, c.n_layers,
                c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size);
    TEST_EXPECT(c.rope_llama3 == 1 && c.rope_factor == 32.0f && c.rope_low_freq_factor == 1.0f &&
                    c.rope_high_freq_factor == 4.0f && c.rope_original_max_pos == 8192,
                "llama3 rope_scaling", "llama3=%d factor=%g", c.rope_llama3, c.rope_factor);
    TEST_EXPECT(c.bos_id == 128000 && c.n_eos == 3 && c.eos_ids[0] == 128001 && c.eos_ids[1] == 128008 &&
                    c.eos_ids[2] == 128009,
                "bos and eos list", "bos=%d n_eos=%d", c.bos_id, c.n_eos);

    /* write and read back: identical struct */
    char *p = path_join(dir, "config.json");
    ModelConfig back;
    rc = hf_config_write(p, &c, &err) || hf_config_read(p, &back, &err);
    TEST_EXPECT(rc == 0 && !memcmp(&back, &c, sizeof c), "Llama 3.2 config write/read round trip", "%s",
                rc ? err.msg : "configs differ");
    char *text = NULL;
    size_t len;
    file_read_all(p, &text, &len, &err);
    TEST_EXPECT(text && strstr(text, "1e-05") && strstr(text, "\"LlamaForCausalLM\"") && strstr(text, "128009"),
                "written config uses short floats and HF names", "%s", text ? text : "(unreadable)");
    free(text);

    rc = parse(QWEN25, &c, &err);
    TEST_EXPECT(rc == 0, "Qwen2.5 0.5B config parses", "%s", err.msg);
    TEST_EXPECT(c.arch == ARCH_QWEN2 && c.qkv_bias == 1 && c.dim == 896 && c.n_heads == 14 && c.n_kv_heads == 2 &&
                    c.head_dim == 64 && c.tied_embeddings == 1 && c.rope_llama3 == 0 && c.norm_eps == 1e-6f &&
                    c.rope_theta == 1e6f && c.n_eos == 1 && c.eos_ids[0] == 151643 && c.bos_id == 151643,
                "Qwen2: biases on, head_dim defaults to hidden/heads", "arch=%d bias=%d hd=%d", c.arch, c.qkv_bias,
                c.head_dim);
    rc = hf_config_write(p, &c, &err) || hf_config_read(p, &back, &err);
    TEST_EXPECT(rc == 0 && !memcmp(&back, &c, sizeof c), "Qwen2 config write/read round trip", "%s",
                rc ? err.msg : "configs differ");

    rc = parse_edit("head_dim", "null", &c, &err);
    TEST_EXPECT(rc == 0 && c.head_dim == 64, "head_dim null means hidden/heads", "%s hd=%d", err.msg, c.head_dim);
    rc = parse_edit("head_dim", "128", &c, &err);
    TEST_EXPECT(rc == 0 && c.head_dim == 128, "head_dim != hidden/heads is kept", "%s hd=%d", err.msg, c.head_dim);

    const char *minimal = "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 172,"
                          " \"num_hidden_layers\": 5, \"num_attention_heads\": 8, \"vocab_size\": 512,"
                          " \"rms_norm_eps\": 1e-5, \"eos_token_id\": 2}";
    rc = parse(minimal, &c, &err);
    TEST_EXPECT(rc == 0 && c.arch == ARCH_LLAMA && c.n_kv_heads == 8 && c.head_dim == 8 && c.rope_theta == 10000.0f &&
                    c.max_seq == 2048 && c.tied_embeddings == 0 && c.bos_id == -1 && c.n_eos == 1 &&
                    c.eos_ids[0] == 2 && c.rope_llama3 == 0,
                "model_type only: defaults for kv heads, theta, max positions, tying", "%s", err.msg);
    rc = parse_edit("rope_scaling", "{\"rope_type\": \"default\"}", &c, &err);
    TEST_EXPECT(rc == 0 && c.rope_llama3 == 0, "rope_type default means no scaling", "%s", err.msg);
    rc = parse_edit("rope_scaling",
                    "{\"type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 1, \"high_freq_factor\": 4,"
                    " \"original_max_position_embeddings\": 8192}",
                    &c, &err);
    TEST_EXPECT(rc == 0 && c.rope_llama3 == 1 && c.rope_factor == 8.0f, "legacy rope_scaling key 'type'", "%s",
                err.msg);
    free(p);
}

static void test_bad(const char *dir) {
    ModelConfig c;
    EXPECT_ERR("missing hidden_size", parse_edit("hidden_size", NULL, &c, &ERR), WHAT ": field 'hidden_size' missing");
    EXPECT_ERR("hidden_size zero", parse_edit("hidden_size", "0", &c, &ERR),
               WHAT ": field 'hidden_size' must be a positive integer");
    EXPECT_ERR("hidden_size fractional", parse_edit("hidden_size", "64.5", &c, &ERR),
               WHAT ": field 'hidden_size' must be a positive integer");
    EXPECT_ERR("hidden_size a string", parse_edit("hidden_size", "\"2048\"", &c, &ERR),
               WHAT ": field 'hidden_size' must be a positive integer");
    EXPECT_ERR("num_key_value_heads negative", parse_edit("num_key_value_heads", "-8", &c, &ERR),
               WHAT ": field 'num_key_value_heads' must be a positive integer");
    EXPECT_ERR("vocab_size too big for int", parse_edit("vocab_size", "1e12", &c, &ERR),
               WHAT ": field 'vocab_size' must be a positive integer");
    EXPECT_ERR("unsupported architecture", parse_edit("architectures", "[\"GPT2LMHeadModel\"]", &c, &ERR),
               WHAT ": unsupported architecture 'GPT2LMHeadModel' (expected LlamaForCausalLM or Qwen2ForCausalLM)");
    EXPECT_ERR("empty architectures", parse_edit("architectures", "[]", &c, &ERR),
               WHAT ": field 'architectures' must be a non-empty list of strings");
    EXPECT_ERR("unsupported model_type",
               parse("{\"model_type\": \"gpt2\", \"hidden_size\": 64}", &c, &ERR),
               WHAT ": unsupported model_type 'gpt2' (expected llama or qwen2)");
    EXPECT_ERR("no architecture at all", parse("{\"hidden_size\": 64}", &c, &ERR),
               WHAT ": field 'architectures' (or 'model_type') missing");
    EXPECT_ERR("rope_scaling yarn", parse_edit("rope_scaling", "{\"rope_type\": \"yarn\", \"factor\": 4}", &c, &ERR),
               WHAT ": rope_scaling type 'yarn' is not supported (only 'llama3')");
    EXPECT_ERR("rope_scaling without type", parse_edit("rope_scaling", "{\"factor\": 4}", &c, &ERR),
               WHAT ": field 'rope_scaling.rope_type' missing or not a string");
    EXPECT_ERR("llama3 rope_scaling without factor",
               parse_edit("rope_scaling",
                          "{\"rope_type\": \"llama3\", \"low_freq_factor\": 1, \"high_freq_factor\": 4,"
                          " \"original_max_position_embeddings\": 8192}",
                          &c, &ERR),
               WHAT ": field 'rope_scaling.factor' missing");
    EXPECT_ERR("llama3 rope_scaling high <= low",
               parse_edit("rope_scaling",
                          "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": 4, \"high_freq_factor\": 1,"
                          " \"original_max_position_embeddings\": 8192}",
                          &c, &ERR),
               WHAT ": rope_scaling (llama3) needs factor > 0, original_max_position_embeddings > 0 and "
                    "high_freq_factor > low_freq_factor");
    EXPECT_ERR("rms_norm_eps negative", parse_edit("rms_norm_eps", "-1e-5", &c, &ERR),
               WHAT ": field 'rms_norm_eps' must be a positive number");
    EXPECT_ERR("rope_theta a string", parse_edit("rope_theta", "\"big\"", &c, &ERR),
               WHAT ": field 'rope_theta' must be a positive number");
    EXPECT_ERR("tie_word_embeddings not bool", parse_edit("tie_word_embeddings", "1", &c, &ERR),
               WHAT ": field 'tie_word_embeddings' must be true or false");
    EXPECT_ERR("eos list too long", parse_edit("eos_token_id", "[1,2,3,4,5,6,7,8,9]", &c, &ERR),
               WHAT ": field 'eos_token_id' has 9 entries, at most 8 are supported");
    EXPECT_ERR("eos negative", parse_edit("eos_token_id", "[1,-2]", &c, &ERR),
               WHAT ": field 'eos_token_id' must be a non-negative integer or a list of them");
    EXPECT_ERR("bos a string", parse_edit("bos_token_id", "\"<s>\"", &c, &ERR),
               WHAT ": field 'bos_token_id' must be a non-negative integer");
    EXPECT_ERR("heads not a multiple of kv heads", parse_edit("num_key_value_heads", "5", &c, &ERR),
               WHAT ": num_attention_heads=32 is not a multiple of num_key_value_heads=5");
    EXPECT_ERR("odd head_dim", parse_edit("head_dim", "63", &c, &ERR),
               WHAT ": head_dim=63 must be even for rotary embeddings");
    EXPECT_ERR("hidden not a multiple of heads and no head_dim",
               parse("{\"model_type\": \"llama\", \"hidden_size\": 65, \"intermediate_size\": 8,"
                     " \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 8}",
                     &c, &ERR),
               WHAT ": hidden_size=65 is not a multiple of num_attention_heads=2 and no head_dim is given");
    EXPECT_ERR("heads x head_dim overflows int", parse_edit("head_dim", "1073741824", &c, &ERR),
               WHAT ": num_attention_heads x head_dim = 34359738368 is too large");
    EXPECT_ERR("llama attention_bias", parse_edit("attention_bias", "true", &c, &ERR),
               WHAT ": field 'attention_bias' is true, which is not supported");
    EXPECT_ERR("hidden_act gelu", parse_edit("hidden_act", "\"gelu\"", &c, &ERR),
               WHAT ": field 'hidden_act' must be \"silu\" (the only activation supported)");
    {
        char q[4096];
        snprintf(q, sizeof q, "%s", QWEN25);
        char *at = strstr(q, "\"use_sliding_window\": false");
        memcpy(at + strlen("\"use_sliding_window\": "), "true ", 5);
        EXPECT_ERR("qwen2 sliding window", parse(q, &c, &ERR),
                   WHAT ": field 'use_sliding_window' is true, which is not supported");
    }
    EXPECT_ERR("bad JSON names the byte", parse("{\"hidden_size\": 64,}", &c, &ERR), WHAT ": bad JSON at byte 19");
    EXPECT_ERR("not an object", parse("[1]", &c, &ERR), WHAT ": not a JSON object");

    char *p = path_join(dir, "bad.json");
    write_text(p, "{\"architectures\": [\"LlamaForCausalLM\"] \"hidden_size\": 1}");
    EXPECT_ERR("bad JSON in a file names the file", hf_config_read(p, &c, &ERR), "%s: bad JSON at byte 39", p);
    free(p);
    p = path_join(dir, "none.json");
    EXPECT_ERR("missing file", hf_config_read(p, &c, &ERR), "%s: cannot open: No such file or directory", p);
    free(p);
}

int main(void) {
    char dir[256];
    make_tmpdir(dir, sizeof dir);
    test_good(dir);
    test_bad(dir);
    rm_rf(dir);
    return test_finish();
}
