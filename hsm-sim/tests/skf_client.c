/*
 * An independent SKF client for hsm-sim's tests: loads an SKF library with dlopen and signs a
 * fixed 32-byte e with the first container of the first device.
 *
 * The declarations below are written from GM/T 0016-2012 as GmSSL declares them in
 * src/skf/skf.h (types from src/sgd.h): ULONG is a 32-bit unsigned integer, BOOL a 32-bit
 * signed integer, structs are #pragma pack(1), ECC fields are ECC_MAX_*_BITS_LEN/8 = 64 bytes
 * with values right-aligned. Nothing here comes from hsm-sim's sources.
 *
 * Usage: skf_client LIBRARY   (user PIN on standard input)
 * Prints device=, serial=, label=, container=, pubkey= (04||x||y hex), e=, sig= (r||s hex).
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint8_t BYTE;
typedef char CHAR;
typedef uint32_t ULONG;
typedef int32_t BOOL;
typedef char *LPSTR;
typedef void *HANDLE;
typedef HANDLE DEVHANDLE;
typedef HANDLE HAPPLICATION;
typedef HANDLE HCONTAINER;

#define SAR_OK 0x00000000
#define USER_TYPE 1
#define ECC_MAX_XCOORDINATE_BITS_LEN 512
#define ECC_MAX_YCOORDINATE_BITS_LEN 512

#pragma pack(1)
typedef struct Struct_Version {
    BYTE major;
    BYTE minor;
} VERSION;

typedef struct Struct_DEVINFO {
    VERSION Version;
    CHAR Manufacturer[64];
    CHAR Issuer[64];
    CHAR Label[32];
    CHAR SerialNumber[32];
    VERSION HWVersion;
    VERSION FirmwareVersion;
    ULONG AlgSymCap;
    ULONG AlgAsymCap;
    ULONG AlgHashCap;
    ULONG DevAuthAlgId;
    ULONG TotalSpace;
    ULONG FreeSpace;
    ULONG MaxECCBufferSize;
    ULONG MaxBufferSize;
    BYTE Reserved[64];
} DEVINFO;

typedef struct Struct_ECCPUBLICKEYBLOB {
    ULONG BitLen;
    BYTE XCoordinate[ECC_MAX_XCOORDINATE_BITS_LEN / 8];
    BYTE YCoordinate[ECC_MAX_YCOORDINATE_BITS_LEN / 8];
} ECCPUBLICKEYBLOB;

typedef struct Struct_ECCSIGNATUREBLOB {
    BYTE r[ECC_MAX_XCOORDINATE_BITS_LEN / 8];
    BYTE s[ECC_MAX_XCOORDINATE_BITS_LEN / 8];
} ECCSIGNATUREBLOB;
#pragma pack()

typedef ULONG (*EnumDev_t)(BOOL bPresent, LPSTR szNameList, ULONG *pulSize);
typedef ULONG (*ConnectDev_t)(LPSTR szName, DEVHANDLE *phDev);
typedef ULONG (*DisConnectDev_t)(DEVHANDLE hDev);
typedef ULONG (*GetDevInfo_t)(DEVHANDLE hDev, DEVINFO *pDevInfo);
typedef ULONG (*EnumApplication_t)(DEVHANDLE hDev, LPSTR szAppName, ULONG *pulSize);
typedef ULONG (*OpenApplication_t)(DEVHANDLE hDev, LPSTR szAppName, HAPPLICATION *phApplication);
typedef ULONG (*CloseApplication_t)(HAPPLICATION hApplication);
typedef ULONG (*VerifyPIN_t)(HAPPLICATION hApplication, ULONG ulPINType, LPSTR szPIN,
                             ULONG *pulRetryCount);
typedef ULONG (*EnumContainer_t)(HAPPLICATION hApplication, LPSTR szContainerName,
                                 ULONG *pulSize);
typedef ULONG (*OpenContainer_t)(HAPPLICATION hApplication, LPSTR szContainerName,
                                 HCONTAINER *phContainer);
typedef ULONG (*CloseContainer_t)(HCONTAINER hContainer);
typedef ULONG (*ExportPublicKey_t)(HCONTAINER hContainer, BOOL bSignFlag, BYTE *pbBlob,
                                   ULONG *pulBlobLen);
typedef ULONG (*ECCSignData_t)(HCONTAINER hContainer, BYTE *pbDigest, ULONG ulDigestLen,
                               ECCSIGNATUREBLOB *pSignature);

static void *lib;

static void *sym(const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "missing symbol %s\n", name);
        exit(2);
    }
    return p;
}

#define CHECK(call)                                                          \
    do {                                                                     \
        ULONG rv_ = (call);                                                  \
        if (rv_ != SAR_OK) {                                                 \
            fprintf(stderr, "%s failed: 0x%08X\n", #call, (unsigned)rv_);    \
            return 1;                                                        \
        }                                                                    \
    } while (0)

static void hex(const char *key, const BYTE *p, size_t n) {
    printf("%s=", key);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

static int all_zero(const BYTE *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s LIBRARY < pin\n", argv[0]);
        return 2;
    }
    char pin[64];
    if (!fgets(pin, sizeof pin, stdin)) {
        fprintf(stderr, "no PIN on stdin\n");
        return 2;
    }
    pin[strcspn(pin, "\r\n")] = 0;

    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    EnumDev_t EnumDev = (EnumDev_t)sym("SKF_EnumDev");
    ConnectDev_t ConnectDev = (ConnectDev_t)sym("SKF_ConnectDev");
    DisConnectDev_t DisConnectDev = (DisConnectDev_t)sym("SKF_DisConnectDev");
    GetDevInfo_t GetDevInfo = (GetDevInfo_t)sym("SKF_GetDevInfo");
    EnumApplication_t EnumApplication = (EnumApplication_t)sym("SKF_EnumApplication");
    OpenApplication_t OpenApplication = (OpenApplication_t)sym("SKF_OpenApplication");
    CloseApplication_t CloseApplication = (CloseApplication_t)sym("SKF_CloseApplication");
    VerifyPIN_t VerifyPIN = (VerifyPIN_t)sym("SKF_VerifyPIN");
    EnumContainer_t EnumContainer = (EnumContainer_t)sym("SKF_EnumContainer");
    OpenContainer_t OpenContainer = (OpenContainer_t)sym("SKF_OpenContainer");
    CloseContainer_t CloseContainer = (CloseContainer_t)sym("SKF_CloseContainer");
    ExportPublicKey_t ExportPublicKey = (ExportPublicKey_t)sym("SKF_ExportPublicKey");
    ECCSignData_t ECCSignData = (ECCSignData_t)sym("SKF_ECCSignData");

    /* Devices: size, then the NUL-separated list; take the first. */
    ULONG size = 0;
    CHAR names[1024];
    CHECK(EnumDev(1, NULL, &size));
    if (size < 2 || size > sizeof names) {
        fprintf(stderr, "EnumDev size %u\n", (unsigned)size);
        return 1;
    }
    CHECK(EnumDev(1, names, &size));
    if (names[size - 1] != 0 || names[size - 2] != 0 || names[0] == 0) {
        fprintf(stderr, "bad device list\n");
        return 1;
    }
    printf("device=%s\n", names);

    DEVHANDLE dev = NULL;
    CHECK(ConnectDev(names, &dev));
    DEVINFO info;
    memset(&info, 0, sizeof info);
    CHECK(GetDevInfo(dev, &info));
    printf("serial=%.32s\n", info.SerialNumber);
    printf("label=%.32s\n", info.Label);

    CHAR apps[256];
    size = sizeof apps;
    CHECK(EnumApplication(dev, apps, &size));
    HAPPLICATION app = NULL;
    CHECK(OpenApplication(dev, apps, &app));
    ULONG retry = 0;
    CHECK(VerifyPIN(app, USER_TYPE, pin, &retry));

    CHAR cons[1024];
    size = sizeof cons;
    CHECK(EnumContainer(app, cons, &size));
    printf("container=%s\n", cons);
    HCONTAINER con = NULL;
    CHECK(OpenContainer(app, cons, &con));

    ECCPUBLICKEYBLOB pub;
    ULONG publen = sizeof pub;
    CHECK(ExportPublicKey(con, 1, (BYTE *)&pub, &publen));
    if (publen != sizeof pub || pub.BitLen != 256 || !all_zero(pub.XCoordinate, 32) ||
        !all_zero(pub.YCoordinate, 32)) {
        fprintf(stderr, "bad ECCPUBLICKEYBLOB (len %u, bits %u)\n", (unsigned)publen,
                (unsigned)pub.BitLen);
        return 1;
    }
    BYTE point[65];
    point[0] = 4;
    memcpy(point + 1, pub.XCoordinate + 32, 32);
    memcpy(point + 33, pub.YCoordinate + 32, 32);
    hex("pubkey", point, sizeof point);

    BYTE e[32];
    for (int i = 0; i < 32; i++)
        e[i] = (BYTE)i;
    hex("e", e, sizeof e);
    ECCSIGNATUREBLOB sig;
    memset(&sig, 0xFF, sizeof sig);
    CHECK(ECCSignData(con, e, sizeof e, &sig));
    if (!all_zero(sig.r, 32) || !all_zero(sig.s, 32)) {
        fprintf(stderr, "signature not right-aligned in 64-byte fields\n");
        return 1;
    }
    BYTE rs[64];
    memcpy(rs, sig.r + 32, 32);
    memcpy(rs + 32, sig.s + 32, 32);
    hex("sig", rs, sizeof rs);

    CHECK(CloseContainer(con));
    CHECK(CloseApplication(app));
    CHECK(DisConnectDev(dev));
    dlclose(lib);
    return 0;
}
