/* fuzz_util.h - small helpers shared by the fuzz harnesses (header-only). */
#ifndef CK_FUZZ_UTIL_H
#define CK_FUZZ_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static inline int ck_fuzz_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* rm -rf path (no symlink is followed: unlinkat removes the link itself). */
static inline void ck_fuzz_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        chmod(path, 0700);
        DIR *d = opendir(path);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                    continue;
                char sub[4096];
                snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
                ck_fuzz_rmtree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static inline int ck_fuzz_count_entries(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

/* A NUL-terminated copy of the input (the parsers that read C strings); NULL if no memory. */
static inline char *ck_fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s) {
        memcpy(s, data, size);
        s[size] = '\0';
    }
    return s;
}

/* An output must be NUL-terminated within its buffer of cap bytes and hold only ASCII
 * from lowest (0x20: spaces allowed, 0x21: not) to '~'; abort() otherwise. */
static inline void ck_fuzz_check_text(const char *s, size_t cap, char lowest)
{
    const char *end = memchr(s, '\0', cap);
    if (!end)
        abort();
    for (; s < end; s++)
        if (*s < lowest || *s > '~')
            abort();
}

#endif
