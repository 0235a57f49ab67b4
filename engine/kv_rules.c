/* Which --kv schemes the engine runs on a given file. The weights fix the
 * KV heads or the MLA latent. On a real GGUF only what needs no retraining
 * is accepted (its own scheme, a window no wider than its own, SimLayerKV,
 * which is training-free); a model `sol synth` wrote has random weights, so
 * sharing a cache across layers (cla) or a window of any width runs there
 * too. SimLayerKV is not composed with windows or sharing. */
#include <string.h>

#include "engine/kv_rules.h"

static int kv_heads_of(const sol_kv_scheme *kv, const sol_model *m)
{
    return kv->heads == SOL_KV_MHA ? m->n_heads : kv->heads == SOL_KV_MQA ? 1 : kv->n_kv_heads;
}

int sol_engine_kv_scheme(const sol_gguf *g, const sol_model *m, const char *text, sol_kv_scheme *kv, sol_err *err)
{
    sol_kv_scheme own;
    sol_kv_from_model(m, &own);
    *kv = own;
    if (!text)
        return 0;
    int rc = sol_kv_parse(text, &own, kv, err);
    if (rc)
        return rc;
    if ((kv->heads == SOL_KV_MLA) != (own.heads == SOL_KV_MLA) ||
        (kv->heads == SOL_KV_MLA && (kv->mla_rank != own.mla_rank || kv->mla_rope != own.mla_rope)))
        return sol_fail(err, SOL_ERR_USAGE,
                        "--kv %s: %s's weights are made for %s; a different latent or head layout needs weights "
                        "made for it (sol synth --kv)",
                        text, g->path, own.heads == SOL_KV_MLA ? "its MLA latent" : "per-head keys and values");
    if (kv->lazy_fraction > 0 && (kv->share > 1 || kv->window > 0))
        return sol_fail(err, SOL_ERR_USAGE,
                        "--kv %s: the engine runs simlayer alone or with a heads term; with local windows or "
                        "cla it is priced by sol analyze only",
                        text);
    if (kv->heads != SOL_KV_MLA && kv_heads_of(kv, m) != m->n_kv_heads)
        return sol_fail(err, SOL_ERR_USAGE,
                        "--kv %s: %s's weights have %d KV heads; a scheme with %d needs weights made for it "
                        "(sol synth --kv)",
                        text, g->path, m->n_kv_heads, kv_heads_of(kv, m));
    int synth = 0;
    if (sol_gguf_get_bool(g, "sol.synth", &synth, err) < 0)
        synth = 0;
    if (synth)
        return 0;
    if (kv->share > 1)
        return sol_fail(err, SOL_ERR_USAGE,
                        "--kv %s: cla shares one cache between layers trained with their own; %s is not a sol "
                        "synth model, so its weights were not made for it",
                        text, g->path);
    if (own.window > 0 && (kv->window == 0 || kv->window > own.window))
        return sol_fail(err, SOL_ERR_USAGE,
                        "--kv %s: %s was trained with a %d-token window; a wider one needs retraining", text,
                        g->path, own.window);
    return 0;
}
