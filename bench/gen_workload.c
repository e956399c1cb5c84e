/*
 * gen_workload.c - writes the SPEC 5 benchmark checkpoint into a directory.
 *
 *   gen_workload DIR [TOTAL_MIB]
 *
 * TOTAL_MIB (default 1536) is split like a training checkpoint: one third fp32 tensors
 * drawn from N(0, 0.02) (weights), two thirds from N(0, 0.001) (optimizer state), in
 * shards of at most 256 MiB, plus a few small JSON files (config, trainer state, index).
 * Deterministic (fixed seeds), so runs compare. Normal deviates by Box-Muller over a
 * xorshift64* generator: fast enough to write a GiB in a few seconds.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SHARD_MAX (256ull << 20)
#define CHUNK     (1u << 20)

static uint64_t next_u64(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static double uniform(uint64_t *s)
{
    return ((double)(next_u64(s) >> 11) + 0.5) / 9007199254740992.0;
}

static int write_tensor(const char *path, uint64_t bytes, double sigma, uint64_t seed)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "gen_workload: %s: %s\n", path, strerror(errno));
        return -1;
    }
    static float buf[CHUNK / sizeof(float)];
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (uint64_t done = 0; done < bytes;) {
        size_t n = sizeof(buf) / sizeof(float);
        for (size_t i = 0; i + 1 < n; i += 2) {
            double r = sqrt(-2.0 * log(uniform(&s))), t = 2.0 * M_PI * uniform(&s);
            buf[i] = (float)(sigma * r * cos(t));
            buf[i + 1] = (float)(sigma * r * sin(t));
        }
        size_t w = bytes - done < sizeof(buf) ? (size_t)(bytes - done) : sizeof(buf);
        if (fwrite(buf, 1, w, f) != w) {
            fprintf(stderr, "gen_workload: writing %s failed\n", path);
            fclose(f);
            return -1;
        }
        done += w;
    }
    return fclose(f);
}

static int write_text(const char *dir, const char *name, const char *text)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static int write_group(const char *dir, const char *prefix, uint64_t bytes, double sigma,
                       uint64_t seed)
{
    for (unsigned i = 0; bytes > 0; i++) {
        uint64_t n = bytes < SHARD_MAX ? bytes : SHARD_MAX;
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s-%05u.bin", dir, prefix, i + 1);
        if (write_tensor(p, n, sigma, seed + i) != 0)
            return -1;
        bytes -= n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: gen_workload DIR [TOTAL_MIB]\n");
        return 2;
    }
    const char *dir = argv[1];
    uint64_t total = (argc == 3 ? strtoull(argv[2], NULL, 10) : 1536) << 20;
    char sub[4096];
    snprintf(sub, sizeof(sub), "%s/optimizer", dir);
    if ((mkdir(dir, 0755) != 0 && errno != EEXIST) || (mkdir(sub, 0755) != 0 && errno != EEXIST)) {
        fprintf(stderr, "gen_workload: cannot create %s\n", dir);
        return 1;
    }
    uint64_t weights = total / 3 / 4 * 4, optim = (total - weights) / 4 * 4;
    if (write_group(dir, "model", weights, 0.02, 1) != 0 ||
        write_group(sub, "state", optim, 0.001, 1000) != 0)
        return 1;
    const char *cfg = "{\"model_type\": \"llama\", \"hidden_size\": 4096, "
                      "\"num_hidden_layers\": 32, \"torch_dtype\": \"float32\"}\n";
    const char *state = "{\"global_step\": 1200, \"epoch\": 0.37, \"best_metric\": null, "
                        "\"log_history\": [{\"loss\": 2.17, \"step\": 1200}]}\n";
    if (write_text(dir, "config.json", cfg) || write_text(dir, "trainer_state.json", state) ||
        write_text(dir, "rng_state.json", "{\"seed\": 42}\n"))
        return 1;
    return 0;
}
