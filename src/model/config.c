#include "model/config.h"

int model_config_validate(const ModelConfig *c, const char *what, Err *err) {
    if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0 || c->vocab_size <= 0)
        return err_set(err, "%s: sizes must be positive (hidden_size=%d intermediate_size=%d "
                            "num_hidden_layers=%d num_attention_heads=%d num_key_value_heads=%d "
                            "head_dim=%d vocab_size=%d)",
                       what, c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads,
                       c->head_dim, c->vocab_size);
    if (c->n_heads % c->n_kv_heads)
        return err_set(err, "%s: num_attention_heads=%d is not a multiple of num_key_value_heads=%d",
                       what, c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2)
        return err_set(err, "%s: head_dim=%d must be even for rotary embeddings", what, c->head_dim);
    if (c->max_seq <= 0)
        return err_set(err, "%s: max_position_embeddings=%d must be positive", what, c->max_seq);
    if (!(c->norm_eps > 0) || !(c->rope_theta > 0))
        return err_set(err, "%s: rms_norm_eps and rope_theta must be positive", what);
    if (c->rope_llama3 &&
        (!(c->rope_factor > 0) || c->rope_original_max_pos <= 0 ||
         !(c->rope_high_freq_factor > c->rope_low_freq_factor)))
        return err_set(err, "%s: rope_scaling (llama3) needs factor > 0, "
                            "original_max_position_embeddings > 0 and high_freq_factor > low_freq_factor",
                       what);
    return 0;
}
