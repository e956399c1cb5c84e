/* tool_status.c - `ckptfs status [--json] MOUNTPOINT`: .status for people. */
#include <stdio.h>
#include <string.h>

#include "cli/ctl.h"
#include "cli/progress.h"
#include "cli/tools.h"

static void field(const char *doc, const char *path, char *out, size_t len, const char *def)
{
    ck_ctl_str(doc, path, out, len);
    if (!out[0])
        snprintf(out, len, "%s", def);
}

static void print_prev(const char *doc)
{
    char st[32], kind[32], src[1024], err[CK_ERR_MSG_MAX], done[32], total[32];
    field(doc, "prev.state", st, sizeof(st), "?");
    field(doc, "prev.kind", kind, sizeof(kind), "-");
    field(doc, "prev.source", src, sizeof(src), "none");
    ck_fmt_bytes((uint64_t)ck_ctl_num(doc, "prev.bytes_done", 0), done, sizeof(done));
    ck_fmt_bytes((uint64_t)ck_ctl_num(doc, "prev.bytes_total", 0), total, sizeof(total));
    printf("prev:     %s, %s from %s, %.0f entries, %s of %s in %.1f s\n", st, kind, src,
           ck_ctl_num(doc, "prev.entries", 0), done, total, ck_ctl_num(doc, "prev.seconds", 0));
    double d = ck_ctl_num(doc, "prev.bytes_done", 0), t = ck_ctl_num(doc, "prev.bytes_total", 0);
    double secs = ck_ctl_num(doc, "prev.seconds", 0);
    if (strcmp(st, "running") == 0 && t > 0 && d > 0 && secs > 0)
        printf("          %.0f%%, %.1f MB/s, ETA %.0f s\n", 100 * d / t, d / 1e6 / secs,
               (t - d) / (d / secs));
    ck_ctl_str(doc, "prev.error", err, sizeof(err));
    if (err[0])
        printf("          error: %s\n", err);
}

static void print_report(const char *doc, const char *which)
{
    char p[64], trig[32], phase[32], b[32], c[32], err[CK_ERR_MSG_MAX];
    snprintf(p, sizeof(p), "save.%s", which);
    char raw[8];
    if (!ck_ctl_get(doc, p, raw, sizeof(raw)) || raw[0] != '{') {
        printf("  %-8s none\n", which);
        return;
    }
    snprintf(p, sizeof(p), "save.%s.trigger", which);
    field(doc, p, trig, sizeof(trig), "?");
    snprintf(p, sizeof(p), "save.%s.phase", which);
    field(doc, p, phase, sizeof(phase), "?");
    snprintf(p, sizeof(p), "save.%s.bytes", which);
    ck_fmt_bytes((uint64_t)ck_ctl_num(doc, p, 0), b, sizeof(b));
    snprintf(p, sizeof(p), "save.%s.compressed_bytes", which);
    ck_fmt_bytes((uint64_t)ck_ctl_num(doc, p, 0), c, sizeof(c));
    snprintf(p, sizeof(p), "save.%s.generation", which);
    double gen = ck_ctl_num(doc, p, 0);
    snprintf(p, sizeof(p), "save.%s.seconds", which);
    double secs = ck_ctl_num(doc, p, 0);
    snprintf(p, sizeof(p), "save.%s.mb_per_s", which);
    printf("  %-8s generation %.0f (%s): %s, %s -> %s in %.2f s (%.1f MB/s)\n", which, gen, trig,
           phase, b, c, secs, ck_ctl_num(doc, p, 0));
    snprintf(p, sizeof(p), "save.%s.error", which);
    ck_ctl_str(doc, p, err, sizeof(err));
    if (err[0])
        printf("           error: %s\n", err);
}

static void print_doc(const char *mnt, const char *doc)
{
    char st[32], mode[32], dest[1024], dirty[8], last[CK_ERR_MSG_MAX];
    field(doc, "state", st, sizeof(st), "?");
    field(doc, "mode", mode, sizeof(mode), "fuse");
    field(doc, "dest", dest, sizeof(dest), "?");
    field(doc, "save.dirty", dirty, sizeof(dirty), "?");
    printf("mount:    %s (%s), state %s\n", mnt, mode, st);
    printf("dest:     %s\n", dest);
    print_prev(doc);
    printf("save:     unsaved changes: %s, saves ok %.0f, failed %.0f\n",
           strcmp(dirty, "true") == 0    ? "yes"
           : strcmp(dirty, "false") == 0 ? "no"
                                         : dirty,
           ck_ctl_num(doc, "save.saves_ok", 0), ck_ctl_num(doc, "save.saves_failed", 0));
    print_report(doc, "current");
    print_report(doc, "last");
    ck_ctl_str(doc, "last_error", last, sizeof(last));
    printf("error:    %s\n", last[0] ? last : "none");
}

int ck_tool_status(int argc, char **argv)
{
    bool json = argc == 3 && strcmp(argv[1], "--json") == 0;
    if (argc != 2 + json) {
        fputs("usage: ckptfs status [--json] MOUNTPOINT\n", stderr);
        return 2;
    }
    const char *mnt = argv[argc - 1];
    char doc[CK_STATUS_MAX];
    struct ck_err err;
    if (ck_ctl_read(mnt, doc, sizeof(doc), &err)) {
        fprintf(stderr, "ckptfs status: %s\n", err.msg);
        return 1;
    }
    if (json)
        fputs(doc, stdout);
    else
        print_doc(mnt, doc);
    return 0;
}
