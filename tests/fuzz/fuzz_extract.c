/* fuzz_extract.c - archive extraction (ck_extract_object) on hostile bytes.
 *
 * The input is the whole object, as a memfd; it is extracted into a fresh directory that
 * the harness removes again. Whatever the bytes, extraction must not crash, leak or write
 * outside that directory (every path is opened below it; the sanitizers and the check
 * after each run catch the rest). Limits are small so that bombs stay cheap. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "archive/extract.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char root[64];
    if (!root[0]) {
        snprintf(root, sizeof(root), "/tmp/ckfuzz-extract-%d", (int)getpid());
        mkdir(root, 0700);
    }
    int obj = memfd_create("obj", MFD_CLOEXEC);
    if (obj < 0 || ck_fuzz_write_all(obj, data, size) != 0)
        abort();
    char dest[96];
    snprintf(dest, sizeof(dest), "%s/d", root);
    ck_fuzz_rmtree(dest);
    if (mkdir(dest, 0700) != 0)
        abort();
    int dfd = open(dest, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (dfd < 0)
        abort();
    const struct ck_extract_limits lim = {
        .max_entry_size = 1 << 20, .max_total_size = 4 << 20, .max_entries = 256};
    enum ck_object_kind kind;
    struct ck_extract_stats st = {0};
    struct ck_err err = {0};
    (void)ck_extract_object(obj, dfd, &lim, &kind, &st, &err);
    close(dfd);
    close(obj);
    /* nothing may appear beside the destination */
    if (ck_fuzz_count_entries(root) != 1)
        abort();
    ck_fuzz_rmtree(dest);
    return 0;
}
