// Compiled matvec images on disk, one file per key (a hash of the source,
// options, architecture and NVRTC version: variant_compile.cu): a header
// with the lowered names and ptxas's figures, then the cubin. A file that
// is short, another program's, another key's, or damaged (its checksum
// covers header and image) is reported and ignored; files are written to a
// temporary name and renamed, so a reader never sees half of one.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/cuda/variant.h"

namespace {

const char kMagic[8] = {'S', 'O', 'L', 'M', 'V', 'C', '1', 0};
const long kMaxFileBytes = 64l << 20;

struct cache_header {
    char magic[8];
    uint64_t key;
    uint64_t image_bytes;
    int32_t sm;
    sol_mv_resources res;
    char kernel[256], sum[256];
    uint64_t check; // sol_mv_hash of the bytes above and of the image
};

uint64_t checksum(const cache_header &h, const uint8_t *image, size_t bytes)
{
    return sol_mv_hash(sol_mv_hash(SOL_MV_HASH_SEED, &h, offsetof(cache_header, check)), image, bytes);
}

// The whole file into out; 0, or -1 (errno set; ENOENT: no file).
int read_file(const char *path, std::string *out)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return -1;
    int rc = fseek(fp, 0, SEEK_END);
    long size = rc ? -1 : ftell(fp);
    if (size < 0 || size > kMaxFileBytes || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        errno = EFBIG;
        return -1;
    }
    out->resize((size_t)size);
    size_t got = size ? fread(&(*out)[0], 1, (size_t)size, fp) : 0;
    fclose(fp);
    if (got != (size_t)size) {
        errno = EIO;
        return -1;
    }
    return 0;
}

// Why the file's bytes are not key's image ("" when they are).
const char *unsound(const std::string &f, uint64_t key, cache_header *h)
{
    if (f.size() < sizeof *h)
        return "shorter than a header";
    memcpy(h, f.data(), sizeof *h);
    if (memcmp(h->magic, kMagic, sizeof kMagic) != 0)
        return "bad magic (not this program's cache file, or another version's)";
    if (h->key != key)
        return "another key's file";
    if (h->image_bytes != f.size() - sizeof *h)
        return "its size does not match its header";
    if (checksum(*h, reinterpret_cast<const uint8_t *>(f.data()) + sizeof *h, h->image_bytes) != h->check)
        return "checksum mismatch (damaged)";
    if (!memchr(h->kernel, 0, sizeof h->kernel) || !memchr(h->sum, 0, sizeof h->sum))
        return "unterminated kernel names";
    return "";
}

// mkdir -p; 0, or -1 with errno.
int make_dirs(const char *dir)
{
    std::string path(dir);
    for (size_t at = 1; at <= path.size(); at++) {
        if (at < path.size() && path[at] != '/')
            continue;
        std::string part = path.substr(0, at);
        if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

cache_header header_of(const sol_mv_image *img)
{
    cache_header h;
    memset(&h, 0, sizeof h); // padding too: the checksum covers it
    memcpy(h.magic, kMagic, sizeof kMagic);
    h.key = img->key;
    h.image_bytes = img->cubin.size();
    h.sm = img->sm;
    h.res = img->res;
    snprintf(h.kernel, sizeof h.kernel, "%s", img->kernel);
    snprintf(h.sum, sizeof h.sum, "%s", img->sum);
    h.check = checksum(h, img->cubin.data(), img->cubin.size());
    return h;
}

// Header and image into a new file beside path (a unique name for every
// writer, thread or process), renamed to path; 0, or -1 with errno.
int write_then_rename(const char *path, const cache_header &h, const std::vector<uint8_t> &image)
{
    std::string tmp = std::string(path) + ".XXXXXX";
    int fd = mkstemp(&tmp[0]);
    if (fd < 0)
        return -1;
    FILE *fp = fdopen(fd, "wb");
    if (!fp)
        close(fd);
    errno = 0;
    bool ok = fp && fwrite(&h, sizeof h, 1, fp) == 1 && fwrite(image.data(), 1, image.size(), fp) == image.size();
    int saved = errno ? errno : EIO;
    if (fp && fclose(fp) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (ok && rename(tmp.c_str(), path) != 0) {
        ok = false;
        saved = errno;
    }
    if (!ok) {
        unlink(tmp.c_str());
        errno = saved;
        return -1;
    }
    return 0;
}

} // namespace

uint64_t sol_mv_hash(uint64_t h, const void *data, size_t bytes)
{
    const uint8_t *p = static_cast<const uint8_t *>(data);
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

void sol_mv_cache_path(const char *dir, uint64_t key, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/mv-%016llx.bin", dir, (unsigned long long)key);
}

int sol_mv_cache_load(const char *dir, uint64_t key, sol_mv_image *out, char *notice, size_t cap)
{
    char path[4096];
    sol_mv_cache_path(dir, key, path, sizeof path);
    std::string f;
    if (read_file(path, &f) != 0) {
        if (errno != ENOENT)
            snprintf(notice, cap, "cache file %s: %s; compiling again", path, strerror(errno));
        return 0;
    }
    cache_header h;
    const char *why = unsound(f, key, &h);
    if (*why) {
        snprintf(notice, cap, "cache file %s: %s; compiling again", path, why);
        return 0;
    }
    out->sm = h.sm;
    out->key = key;
    out->cubin.assign(f.begin() + sizeof h, f.end());
    memcpy(out->kernel, h.kernel, sizeof out->kernel);
    memcpy(out->sum, h.sum, sizeof out->sum);
    out->res = h.res;
    return 1;
}

int sol_mv_cache_store(const char *dir, const sol_mv_image *img, char *notice, size_t cap)
{
    char path[4096];
    sol_mv_cache_path(dir, img->key, path, sizeof path);
    if (make_dirs(dir) != 0) {
        snprintf(notice, cap, "cache directory %s: %s; image not cached", dir, strerror(errno));
        return -1;
    }
    if (write_then_rename(path, header_of(img), img->cubin) != 0) {
        snprintf(notice, cap, "cache file %s: %s; image not cached", path, strerror(errno));
        return -1;
    }
    return 0;
}
