/*
 * An independent SDF client for hsm-sim's tests: loads a GM/T 0018 SDF library with dlopen,
 * opens the device and a session, gets the private-key access right for key index 1 with the
 * password read from standard input, exports its signing public key and signs a fixed 32-byte e.
 *
 * The declarations below are written from GM/T 0018-2012 as GmSSL declares them in
 * src/sdf/sdf.h (ECCref_MAX_BITS from src/sgd.h: 512, or 256 with SGD_MAX_ECC_BITS_256):
 * functions return int, lengths and indexes are unsigned int, handles void *, structs are
 * #pragma pack(1) with ECC values right-aligned in ECCref_MAX_LEN-byte fields.
 * Nothing here comes from hsm-sim's sources.
 *
 * Usage: sdf_client LIBRARY   (password on standard input)
 * Prints device=, serial=, pubkey= (04||x||y hex), e=, sig= (r||s hex); on a failing call,
 * "FUNCTION: 0xCODE" on stderr and exit status 1.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SGD_MAX_ECC_BITS_256
#define ECCref_MAX_BITS 256
#else
#define ECCref_MAX_BITS 512
#endif
#define ECCref_MAX_LEN ((ECCref_MAX_BITS + 7) / 8)

#define SDR_OK 0x0

#pragma pack(1)
typedef struct DeviceInfo_st {
    unsigned char IssuerName[40];
    unsigned char DeviceName[16];
    unsigned char DeviceSerial[16];
    unsigned int DeviceVersion;
    unsigned int StandardVersion;
    unsigned int AsymAlgAbility[2];
    unsigned int SymAlgAbility;
    unsigned int HashAlgAbility;
    unsigned int BufferSize;
} DEVICEINFO;

typedef struct ECCrefPublicKey_st {
    unsigned int bits;
    unsigned char x[ECCref_MAX_LEN];
    unsigned char y[ECCref_MAX_LEN];
} ECCrefPublicKey;

typedef struct ECCSignature_st {
    unsigned char r[ECCref_MAX_LEN];
    unsigned char s[ECCref_MAX_LEN];
} ECCSignature;
#pragma pack()

typedef int (*OpenDevice_f)(void **phDeviceHandle);
typedef int (*CloseDevice_f)(void *hDeviceHandle);
typedef int (*OpenSession_f)(void *hDeviceHandle, void **phSessionHandle);
typedef int (*CloseSession_f)(void *hSessionHandle);
typedef int (*GetDeviceInfo_f)(void *hSessionHandle, DEVICEINFO *pstDeviceInfo);
typedef int (*GetPrivateKeyAccessRight_f)(void *hSessionHandle, unsigned int uiKeyIndex,
                                          unsigned char *pucPassword, unsigned int uiPwdLength);
typedef int (*ReleasePrivateKeyAccessRight_f)(void *hSessionHandle, unsigned int uiKeyIndex);
typedef int (*ExportSignPublicKey_ECC_f)(void *hSessionHandle, unsigned int uiKeyIndex,
                                         ECCrefPublicKey *pucPublicKey);
typedef int (*InternalSign_ECC_f)(void *hSessionHandle, unsigned int uiISKIndex,
                                  unsigned char *pucData, unsigned int uiDataLength,
                                  ECCSignature *pucSignature);

static void *lib;

static void *sym(const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "missing %s\n", name);
        exit(1);
    }
    return p;
}

static void check(const char *what, int rv) {
    if (rv != SDR_OK) {
        fprintf(stderr, "%s: 0x%08X\n", what, (unsigned int)rv);
        exit(1);
    }
}

static void hex(const char *key, const unsigned char *p, size_t n) {
    printf("%s=", key);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

/* A fixed-width text field up to its first NUL. */
static void text(const char *key, const unsigned char *p, size_t n) {
    size_t k = 0;
    while (k < n && p[k])
        k++;
    printf("%s=%.*s\n", key, (int)k, (const char *)p);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s LIBRARY\n", argv[0]);
        return 2;
    }
    char pwd[128];
    if (!fgets(pwd, sizeof pwd, stdin)) {
        fprintf(stderr, "no password on stdin\n");
        return 2;
    }
    pwd[strcspn(pwd, "\r\n")] = 0;

    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    OpenDevice_f OpenDevice = (OpenDevice_f)sym("SDF_OpenDevice");
    CloseDevice_f CloseDevice = (CloseDevice_f)sym("SDF_CloseDevice");
    OpenSession_f OpenSession = (OpenSession_f)sym("SDF_OpenSession");
    CloseSession_f CloseSession = (CloseSession_f)sym("SDF_CloseSession");
    GetDeviceInfo_f GetDeviceInfo = (GetDeviceInfo_f)sym("SDF_GetDeviceInfo");
    GetPrivateKeyAccessRight_f GetRight =
        (GetPrivateKeyAccessRight_f)sym("SDF_GetPrivateKeyAccessRight");
    ReleasePrivateKeyAccessRight_f ReleaseRight =
        (ReleasePrivateKeyAccessRight_f)sym("SDF_ReleasePrivateKeyAccessRight");
    ExportSignPublicKey_ECC_f ExportSignPublicKey =
        (ExportSignPublicKey_ECC_f)sym("SDF_ExportSignPublicKey_ECC");
    InternalSign_ECC_f InternalSign = (InternalSign_ECC_f)sym("SDF_InternalSign_ECC");

    void *dev = NULL, *sess = NULL;
    check("SDF_OpenDevice", OpenDevice(&dev));
    check("SDF_OpenSession", OpenSession(dev, &sess));

    DEVICEINFO info;
    memset(&info, 0, sizeof info);
    check("SDF_GetDeviceInfo", GetDeviceInfo(sess, &info));
    text("device", info.DeviceName, sizeof info.DeviceName);
    text("serial", info.DeviceSerial, sizeof info.DeviceSerial);

    check("SDF_GetPrivateKeyAccessRight",
          GetRight(sess, 1, (unsigned char *)pwd, (unsigned int)strlen(pwd)));
    memset(pwd, 0, sizeof pwd);

    ECCrefPublicKey pk;
    memset(&pk, 0, sizeof pk);
    check("SDF_ExportSignPublicKey_ECC", ExportSignPublicKey(sess, 1, &pk));
    if (pk.bits != 256) {
        fprintf(stderr, "bits = %u\n", pk.bits);
        return 1;
    }
    unsigned char point[65];
    point[0] = 4;
    memcpy(point + 1, pk.x + ECCref_MAX_LEN - 32, 32);
    memcpy(point + 33, pk.y + ECCref_MAX_LEN - 32, 32);
    hex("pubkey", point, sizeof point);

    unsigned char e[32];
    for (int i = 0; i < 32; i++)
        e[i] = (unsigned char)i;
    hex("e", e, sizeof e);

    ECCSignature sig;
    memset(&sig, 0, sizeof sig);
    check("SDF_InternalSign_ECC", InternalSign(sess, 1, e, sizeof e, &sig));
    unsigned char rs[64];
    memcpy(rs, sig.r + ECCref_MAX_LEN - 32, 32);
    memcpy(rs + 32, sig.s + ECCref_MAX_LEN - 32, 32);
    hex("sig", rs, sizeof rs);

    check("SDF_ReleasePrivateKeyAccessRight", ReleaseRight(sess, 1));
    check("SDF_CloseSession", CloseSession(sess));
    check("SDF_CloseDevice", CloseDevice(dev));
    dlclose(lib);
    return 0;
}
