/*
 * A small FUSE passthrough filesystem for ram-integrity-test
 *
 * Usage: passthrough [--no-lseek] BACKING-DIR MOUNTPOINT [FUSE options]
 *
 * Every file of MOUNTPOINT is the file of the same name in BACKING-DIR.
 * Reads and writes go through the kernel's page cache of the FUSE file
 * (no direct_io), so a shared writable mapping of a file here holds
 * dirty pages that reach BACKING-DIR only when the kernel writes them
 * back.  lseek(SEEK_DATA/SEEK_HOLE) is forwarded to the backing file, as
 * libfuse's own passthrough examples do: it answers from what was
 * written back, and so reports holes where the mapping holds data not
 * yet written back.  That is what a filesystem the RAM engine must not
 * trust looks like (issue 21).  With --no-lseek the server leaves lseek
 * unimplemented and the kernel answers itself (all data up to EOF).
 *
 * Built by scripts/test-filesystems.sh against libfuse3.
 *
 * Copyright (c) 2026 The QEMU migration branch developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#define FUSE_USE_VERSION 31
#define _GNU_SOURCE

#include <fuse.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

static int backing = -1;

/* The path of @path relative to the backing directory */
static const char *rel(const char *path)
{
    while (*path == '/') {
        path++;
    }
    return *path ? path : ".";
}

static void *pt_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    (void)conn;
    cfg->use_ino = 1;
    /* Only the kernel changes these files: keep its page cache on open. */
    cfg->kernel_cache = 1;
    return NULL;
}

static int pt_getattr(const char *path, struct stat *st,
                      struct fuse_file_info *fi)
{
    int res = fi ? fstat(fi->fh, st)
                 : fstatat(backing, rel(path), st, AT_SYMLINK_NOFOLLOW);

    return res < 0 ? -errno : 0;
}

static int pt_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
                      off_t offset, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
    int fd = openat(backing, rel(path), O_RDONLY | O_DIRECTORY);
    DIR *dir;
    struct dirent *de;

    (void)offset;
    (void)fi;
    (void)flags;
    if (fd < 0) {
        return -errno;
    }
    dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return -errno;
    }
    while ((de = readdir(dir))) {
        if (filler(buf, de->d_name, NULL, 0, 0)) {
            break;
        }
    }
    closedir(dir);
    return 0;
}

static int pt_mkdir(const char *path, mode_t mode)
{
    return mkdirat(backing, rel(path), mode) < 0 ? -errno : 0;
}

static int pt_rmdir(const char *path)
{
    return unlinkat(backing, rel(path), AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int pt_unlink(const char *path)
{
    return unlinkat(backing, rel(path), 0) < 0 ? -errno : 0;
}

static int pt_rename(const char *from, const char *to, unsigned int flags)
{
    if (flags) {
        return -EINVAL;
    }
    return renameat(backing, rel(from), backing, rel(to)) < 0 ? -errno : 0;
}

static int pt_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    int res = fi ? fchmod(fi->fh, mode) : fchmodat(backing, rel(path), mode, 0);

    return res < 0 ? -errno : 0;
}

static int pt_truncate(const char *path, off_t size,
                       struct fuse_file_info *fi)
{
    int res;

    if (fi) {
        res = ftruncate(fi->fh, size);
    } else {
        int fd = openat(backing, rel(path), O_WRONLY);

        if (fd < 0) {
            return -errno;
        }
        res = ftruncate(fd, size);
        close(fd);
    }
    return res < 0 ? -errno : 0;
}

static int pt_utimens(const char *path, const struct timespec tv[2],
                      struct fuse_file_info *fi)
{
    int res = fi ? futimens(fi->fh, tv)
                 : utimensat(backing, rel(path), tv, AT_SYMLINK_NOFOLLOW);

    return res < 0 ? -errno : 0;
}

static int pt_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    int fd = openat(backing, rel(path), fi->flags, mode);

    if (fd < 0) {
        return -errno;
    }
    fi->fh = fd;
    return 0;
}

static int pt_open(const char *path, struct fuse_file_info *fi)
{
    int fd = openat(backing, rel(path), fi->flags & ~O_DIRECT);

    if (fd < 0) {
        return -errno;
    }
    fi->fh = fd;
    fi->keep_cache = 1;
    return 0;
}

static int pt_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi)
{
    ssize_t res = pread(fi->fh, buf, size, off);

    (void)path;
    return res < 0 ? -errno : res;
}

static int pt_write(const char *path, const char *buf, size_t size,
                    off_t off, struct fuse_file_info *fi)
{
    ssize_t res = pwrite(fi->fh, buf, size, off);

    (void)path;
    return res < 0 ? -errno : res;
}

static int pt_statfs(const char *path, struct statvfs *st)
{
    (void)path;
    return fstatvfs(backing, st) < 0 ? -errno : 0;
}

static int pt_release(const char *path, struct fuse_file_info *fi)
{
    (void)path;
    close(fi->fh);
    return 0;
}

static int pt_fsync(const char *path, int datasync,
                    struct fuse_file_info *fi)
{
    int res = datasync ? fdatasync(fi->fh) : fsync(fi->fh);

    (void)path;
    return res < 0 ? -errno : 0;
}

static int pt_fallocate(const char *path, int mode, off_t off, off_t len,
                        struct fuse_file_info *fi)
{
    (void)path;
    return fallocate(fi->fh, mode, off, len) < 0 ? -errno : 0;
}

static off_t pt_lseek(const char *path, off_t off, int whence,
                      struct fuse_file_info *fi)
{
    off_t res = lseek(fi->fh, off, whence);

    (void)path;
    return res < 0 ? -errno : res;
}

static struct fuse_operations ops = {
    .init       = pt_init,
    .getattr    = pt_getattr,
    .readdir    = pt_readdir,
    .mkdir      = pt_mkdir,
    .rmdir      = pt_rmdir,
    .unlink     = pt_unlink,
    .rename     = pt_rename,
    .chmod      = pt_chmod,
    .truncate   = pt_truncate,
    .utimens    = pt_utimens,
    .create     = pt_create,
    .open       = pt_open,
    .read       = pt_read,
    .write      = pt_write,
    .statfs     = pt_statfs,
    .release    = pt_release,
    .fsync      = pt_fsync,
    .fallocate  = pt_fallocate,
    .lseek      = pt_lseek,
};

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--no-lseek")) {
        ops.lseek = NULL;
        argv[1] = argv[0];
        argc--;
        argv++;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: %s [--no-lseek] BACKING-DIR MOUNTPOINT "
                "[FUSE options]\n", argv[0]);
        return 2;
    }
    backing = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (backing < 0) {
        perror(argv[1]);
        return 1;
    }
    argv[1] = argv[0];
    return fuse_main(argc - 1, argv + 1, &ops, NULL);
}
