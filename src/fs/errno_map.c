/*
 * errno_map.c - the one place a result becomes an errno (fs_internal.h).
 *
 * A user's program sees the truth where an errno has a name for it: a full cache disk
 * is ENOSPC, a store that refused the credentials EACCES, a bounded wait that ran out
 * ETIMEDOUT. What has no better name (a network or server failure, damaged or hostile
 * data, a conflicting commit, a bad daemon setting) is EIO; .status and the log hold the
 * message.
 */
#include <errno.h>

#include "fs/fs_internal.h"

int ck_fs_errno(ck_rc rc)
{
    switch (rc) {
    case CK_OK:
        return 0;
    case CK_ENOMEM:
        return ENOMEM;
    case CK_ENOTFOUND:
        return ENOENT;
    case CK_EAUTH:
    case CK_EPERM:
        return EACCES;
    case CK_ENOSPC:
        return ENOSPC;
    case CK_ETIMEDOUT:
        return ETIMEDOUT;
    case CK_EUNSUPPORTED:
        return ENOTSUP;
    case CK_ECANCELED:
        return ECANCELED;
    case CK_EINVAL: /* the daemon's own arguments (a source that is a folder), not the caller's */
    case CK_EREMOTE:
    case CK_ENET:
    case CK_EIO:
    case CK_ECORRUPT:
    case CK_EHOSTILE:
    case CK_EEXIST:
    case CK_EREPLAY:
        break;
    }
    return EIO;
}
