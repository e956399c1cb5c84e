/* progress.c - progress on stderr; see progress.h. */
#include "cli/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "util/clock.h"

#define BAR_WIDTH 30

void ck_fmt_bytes(uint64_t n, char *buf, unsigned len)
{
    static const char *const unit[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1000 && u < 4) {
        v /= 1000;
        u++;
    }
    snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

void ck_progress_init(struct ck_progress *p, const char *what)
{
    p->what = what;
    p->tty = isatty(STDERR_FILENO);
    p->t0 = p->last_print = ck_now();
    p->printed = false;
}

static void bar(char *out, uint64_t done, uint64_t total)
{
    int fill = total ? (int)((double)done / (double)total * BAR_WIDTH) : 0;
    for (int i = 0; i < BAR_WIDTH; i++)
        out[i] = i < fill ? '#' : '.';
    out[BAR_WIDTH] = '\0';
}

void ck_progress_update(struct ck_progress *p, uint64_t done, uint64_t total)
{
    double now = ck_now();
    if (now - p->last_print < (p->tty ? 0.1 : 5.0))
        return;
    p->last_print = now;
    double el = now - p->t0;
    double rate = el > 0 ? (double)done / el : 0;
    char d[32], t[32], eta[32] = "";
    ck_fmt_bytes(done, d, sizeof(d));
    ck_fmt_bytes(total, t, sizeof(t));
    if (total && rate > 0 && done <= total)
        snprintf(eta, sizeof(eta), ", ETA %.0f s", (double)(total - done) / rate);
    if (p->tty) {
        char b[BAR_WIDTH + 1];
        bar(b, done, total);
        fprintf(stderr, "\r%s [%s] %s%s%s, %.1f MB/s%s\033[K", p->what, b, d, total ? " of " : "",
                total ? t : "", rate / 1e6, eta);
    } else {
        fprintf(stderr, "%s: %s%s%s, %.1f MB/s%s\n", p->what, d, total ? " of " : "",
                total ? t : "", rate / 1e6, eta);
    }
    p->printed = true;
}

void ck_progress_end(struct ck_progress *p)
{
    if (p->tty && p->printed)
        fputs("\r\033[K", stderr);
}
