/* Hardware ceilings: presets compiled in from analyzer/hw/\*.json, a JSON
 * file given by path, or "cpu" read from this machine. */
#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analyzer/analyzer.h"
#include "util/embedded.h"
#include "util/file.h"
#include "util/quote.h"

extern const sol_embedded_file sol_embedded_hw[];

int sol_hw_preset_count(void) { return sol_embedded_count(sol_embedded_hw); }

const char *sol_hw_preset_name(int i) { return sol_embedded_hw[i].name; }

static void copy_string(const cJSON *obj, const char *key, char *dst, size_t cap)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsString(item)) {
        snprintf(dst, cap, "%s", item->valuestring);
        sol_printable(dst); /* entries are printed: no escape sequences */
    }
}

/* A {"value": X, "source": "...", "note": "..."} field. */
static int read_value(const cJSON *obj, const char *key, const char *origin, int required,
                      sol_hw_value *out, sol_err *err)
{
    memset(out, 0, sizeof *out);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!item) {
        if (required)
            return sol_fail(err, SOL_ERR_RUNTIME, "%s: missing required key \"%s\"", origin, key);
        snprintf(out->source, sizeof out->source, "unsupported");
        return 0;
    }
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(item, "value");
    copy_string(item, "source", out->source, sizeof out->source);
    copy_string(item, "note", out->note, sizeof out->note);
    if (cJSON_IsNull(value) && !required)
        return 0;
    if (!cJSON_IsNumber(value) || !(value->valuedouble > 0) || !isfinite(value->valuedouble))
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: \"%s\" needs a positive, finite \"value\"", origin, key);
    if (!out->source[0])
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: \"%s\" needs a \"source\" (datasheet, driver or estimate)",
                        origin, key);
    out->value = value->valuedouble;
    out->known = 1;
    return 0;
}

int sol_hw_from_json(const char *text, const char *origin, sol_hw *hw, sol_err *err)
{
    memset(hw, 0, sizeof *hw);
    cJSON *doc = cJSON_Parse(text);
    if (!doc)
        return sol_fail(err, SOL_ERR_RUNTIME, "%s: invalid JSON", origin);
    int rc = 0;
    const cJSON *peaks = cJSON_GetObjectItemCaseSensitive(doc, "peak_flops");
    copy_string(doc, "name", hw->name, sizeof hw->name);
    copy_string(doc, "display_name", hw->display_name, sizeof hw->display_name);
    copy_string(doc, "vendor", hw->vendor, sizeof hw->vendor);
    copy_string(doc, "kind", hw->kind, sizeof hw->kind);
    if (!hw->name[0]) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: missing required key \"name\"", origin);
        goto exit;
    }
    if (!hw->display_name[0])
        snprintf(hw->display_name, sizeof hw->display_name, "%s", hw->name);
    if (!cJSON_IsObject(peaks)) {
        rc = sol_fail(err, SOL_ERR_RUNTIME, "%s: missing required object \"peak_flops\"", origin);
        goto exit;
    }
    if ((rc = read_value(doc, "mem_bw_bytes_per_s", origin, 1, &hw->mem_bw, err)) ||
        (rc = read_value(doc, "mem_bytes", origin, 1, &hw->mem_bytes, err)) ||
        (rc = read_value(doc, "l2_bytes", origin, 0, &hw->llc_bytes, err)) ||
        (rc = read_value(doc, "interconnect_bw_bytes_per_s", origin, 0, &hw->interconnect_bw, err)) ||
        (rc = read_value(doc, "interconnect_latency_s", origin, 0, &hw->interconnect_latency, err)))
        goto exit;
    for (int p = 0; p < SOL_PEAK_COUNT; p++)
        if ((rc = read_value(peaks, sol_peak_name((sol_peak)p), origin, p == SOL_PEAK_FP32, &hw->peak[p],
                             err)))
            goto exit;
exit:
    cJSON_Delete(doc);
    return rc;
}

static int read_file(const char *path, char **out, sol_err *err)
{
    FILE *f = sol_fopen_regular(path, err);
    if (!f)
        return SOL_ERR_RUNTIME;
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf)
        return sol_fail(err, SOL_ERR_RUNTIME, "out of memory");
    buf[n] = '\0';
    *out = buf;
    return 0;
}

int sol_hw_load(const char *name, sol_hw *hw, sol_err *err)
{
    if (strcmp(name, "cpu") == 0)
        return sol_hw_detect_cpu(hw, err);
    const char *preset = sol_embedded_find(sol_embedded_hw, name);
    if (preset)
        return sol_hw_from_json(preset, name, hw, err);
    if (!strchr(name, '/') && !strstr(name, ".json"))
        return sol_fail(err, SOL_ERR_USAGE, "--hw: unknown hardware \"%s\" (see `sol hw list`)", name);
    char *text = NULL;
    int rc = read_file(name, &text, err);
    if (rc == 0)
        rc = sol_hw_from_json(text, name, hw, err);
    free(text);
    return rc;
}

double sol_hw_peak(const sol_hw *hw, sol_peak want, sol_peak *used)
{
    sol_peak p = want;
    /* An unsupported type runs at the rate of the type it is widened to. */
    while (!hw->peak[p].known && p != SOL_PEAK_FP32)
        p = (p == SOL_PEAK_FP16) ? SOL_PEAK_FP32 : SOL_PEAK_FP16;
    if (used)
        *used = p;
    return hw->peak[p].value;
}

const char *sol_hw_for_gpu(const char *gpu, double mem_bytes)
{
    static const struct {
        const char *needle, *hw;
    } map[] = {{"H200", "h200"}, {"H100 PCIe", "h100-pcie"}, {"H100", "h100-sxm"}, {"L40S", "l40s"},
               {"A10G", "a10g"},  {"Tesla T4", "t4"},        {"4090", "rtx-4090"}, {"MI300X", "mi300x"}};
    if (strstr(gpu, "A100"))
        return mem_bytes > 50e9 ? "a100-80gb" : "a100-40gb";
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strstr(gpu, map[i].needle))
            return map[i].hw;
    return NULL;
}
