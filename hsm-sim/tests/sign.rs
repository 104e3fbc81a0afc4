//! SM2 signing through both vendor profiles and both encodings, checked by the `sm2` crate
//! and by OpenSSL 3; the GB/T 32918.5 vector checks Z and e.

mod common;
use common::*;
use cryptoki::error::RvError;
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, KeyType, ObjectClass};

const MSG: &[u8] = b"seal this contract";

#[test]
fn every_profile_and_encoding_signs_verifiably() {
    for (profile, enc) in [
        ("sansec", "raw"),
        ("sansec", "der"),
        ("tass", "raw"),
        ("tass", "der"),
    ] {
        let env = Env::new(&format!(
            "profile = \"{profile}\"\nsignature_encoding = \"{enc}\""
        ));
        let (kt, _, raw, sm3sm2, _) = codes(profile);
        let slot = env.init_token(0, "sign");
        let s = env.user_session(slot);
        let (pubk, privk) = keygen(&s, profile, b"\x01");
        let pt = point(&s, pubk);

        // Key attributes: vendor key type, SM2 OID, sensitive and never extractable.
        let a = s
            .get_attributes(
                privk,
                &[
                    AttributeType::KeyType,
                    AttributeType::EcParams,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                ],
            )
            .unwrap();
        assert!(
            a.contains(&Attribute::KeyType(
                KeyType::new_vendor_defined(kt).unwrap()
            )),
            "{profile}: {a:?}"
        );
        assert!(a.contains(&Attribute::EcParams(vec![
            0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D
        ])));
        assert!(
            a.contains(&Attribute::Sensitive(true)) && a.contains(&Attribute::Extractable(false))
        );

        // SM3-with-SM2 over the message (the module computes Z).
        let sig = s.sign(&mech(sm3sm2), privk, MSG).unwrap();
        match enc {
            "raw" => assert_eq!(sig.len(), 64, "{profile}/{enc}"),
            _ => assert_eq!(sig[0], 0x30, "{profile}/{enc} DER SEQUENCE"),
        }
        let rs = rs_of(&sig);
        assert!(
            sm2_verify_msg(&pt, MSG, &rs),
            "{profile}/{enc}: sm2 crate rejects"
        );
        assert!(
            openssl_verify(env.dir.path(), &pt, MSG, &rs),
            "{profile}/{enc}: OpenSSL rejects"
        );
        s.verify(&mech(sm3sm2), pubk, MSG, &sig).unwrap();

        // Raw SM2 over a caller-computed e = SM3(Z ‖ M).
        let e = hsm_sim::crypto::e_value(b"1234567812345678", &pt, MSG).unwrap();
        let sig = s.sign(&mech(raw), privk, &e).unwrap();
        let rs = rs_of(&sig);
        assert!(
            sm2_verify_msg(&pt, MSG, &rs),
            "{profile}/{enc}: raw sign over e"
        );
        assert!(openssl_verify(env.dir.path(), &pt, MSG, &rs));
        s.verify(&mech(raw), pubk, &e, &sig).unwrap();

        // A tampered signature fails; a wrong-length e is refused.
        let mut bad = rs;
        bad[40] ^= 1;
        assert_eq!(
            rv(s.verify(&mech(raw), pubk, &e, &bad).unwrap_err()),
            RvError::SignatureInvalid
        );
        assert!(
            !openssl_verify(env.dir.path(), &pt, MSG, &bad),
            "OpenSSL oracle must be able to fail"
        );
        assert!(!sm2_verify_msg(&pt, MSG, &bad));
        assert_eq!(
            rv(s.sign(&mech(raw), privk, &e[..31]).unwrap_err()),
            RvError::DataLenRange
        );

        // The other family's raw code is not offered here.
        let other = if profile == "sansec" {
            0x8000_8000
        } else {
            0x8000_8104
        };
        assert_eq!(
            rv(s.sign(&mech(other), privk, &e).unwrap_err()),
            RvError::MechanismInvalid
        );
    }
}

/// GB/T 32918.5 Annex A (fixtures/vectors.md).
const D: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
const Z: &str = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3";
const E: &str = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640";
const R: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
const S: &str = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
const CURVE: &str = concat!(
    "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC",
    "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93",
    "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7",
    "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0"
);

#[test]
fn gbt_32918_vector_checks_digest_z_and_e() {
    let env = Env::new("profile = \"sansec\"\nsignature_encoding = \"der\"");
    let (kt, _, raw, sm3sm2, sm3) = codes("sansec");
    let slot = env.init_token(0, "vector");
    let s = env.user_session(slot);

    // SM3 vectors through C_Digest and multi-part digest.
    assert_eq!(
        hex::encode_upper(s.digest(&mech(sm3), b"abc").unwrap()),
        "66C7F0F462EEEDD9D1F2D46BDC10E4E24167C4875CF2F7A2297DA02B8F4BA8E0"
    );
    s.digest_init(&mech(sm3)).unwrap();
    for _ in 0..16 {
        s.digest_update(b"abcd").unwrap();
    }
    assert_eq!(
        hex::encode_upper(s.digest_final().unwrap()),
        "DEBE9FF92275B8A138604889C18E5A4D6FDB70E5387E5765293DCBA39C0C5732"
    );

    // Z and e through the token's SM3.
    let d = hex::decode(D).unwrap();
    let sk = sm2::SecretKey::from_slice(&d).unwrap();
    use sm2::elliptic_curve::sec1::ToEncodedPoint;
    let pt = sk.public_key().to_encoded_point(false).as_bytes().to_vec();
    let mut zin = vec![0x00, 0x80];
    zin.extend_from_slice(b"1234567812345678");
    zin.extend(hex::decode(CURVE).unwrap());
    zin.extend_from_slice(&pt[1..]);
    let z = s.digest(&mech(sm3), &zin).unwrap();
    assert_eq!(hex::encode_upper(&z), Z);
    let mut ein = z.clone();
    ein.extend_from_slice(b"message digest");
    assert_eq!(hex::encode_upper(s.digest(&mech(sm3), &ein).unwrap()), E);

    // Import the vector's key pair; the vector's (r, s) verifies via both mechanisms.
    let common = |class| {
        vec![
            Attribute::Class(class),
            Attribute::KeyType(KeyType::new_vendor_defined(kt).unwrap()),
            Attribute::Token(true),
            Attribute::Id(b"vec".to_vec()),
            Attribute::EcParams(vec![
                0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D,
            ]),
        ]
    };
    let mut pt_t = common(ObjectClass::PUBLIC_KEY);
    pt_t.push(Attribute::EcPoint([vec![0x04, 65], pt.clone()].concat()));
    let pubk = s.create_object(&pt_t).unwrap();
    let mut pk_t = common(ObjectClass::PRIVATE_KEY);
    pk_t.push(Attribute::Value(d.clone()));
    let privk = s.create_object(&pk_t).unwrap();
    let rs = hex::decode(format!("{R}{S}")).unwrap();
    s.verify(&mech(sm3sm2), pubk, b"message digest", &rs)
        .unwrap();
    s.verify(&mech(raw), pubk, &hex::decode(E).unwrap(), &rs)
        .unwrap();
    assert_eq!(
        rv(s.verify(&mech(sm3sm2), pubk, b"message digesT", &rs)
            .unwrap_err()),
        RvError::SignatureInvalid
    );

    // The imported private value is sensitive.
    let info = s
        .get_attribute_info(privk, &[AttributeType::Value, AttributeType::Id])
        .unwrap();
    assert!(
        matches!(
            info[..],
            [AttributeInfo::Sensitive, AttributeInfo::Available(3)]
        ),
        "{info:?}"
    );

    // A new signature by the module over M is a signature over the vector's e.
    let sig = s.sign(&mech(sm3sm2), privk, b"message digest").unwrap();
    let sig = sm2::dsa::Signature::from_slice(&rs_of(&sig)).unwrap();
    let vk = sm2::dsa::VerifyingKey::from_sec1_bytes("1234567812345678", &pt).unwrap();
    use sm2::dsa::signature::hazmat::PrehashVerifier;
    vk.verify_prehash(&hex::decode(E).unwrap(), &sig).unwrap();

    // Multi-part SM3-with-SM2 and a caller-supplied user ID.
    s.sign_init(&mech(sm3sm2), privk).unwrap();
    s.sign_update(b"message ").unwrap();
    s.sign_update(b"digest").unwrap();
    let sig = s.sign_final().unwrap();
    vk.verify_prehash(
        &hex::decode(E).unwrap(),
        &sm2::dsa::Signature::from_slice(&rs_of(&sig)).unwrap(),
    )
    .unwrap();
    let id = b"ALICE123@YAHOO.COM";
    let sig = s.sign(&mech_with(sm3sm2, id), privk, MSG).unwrap();
    let vk_alice = sm2::dsa::VerifyingKey::from_sec1_bytes("ALICE123@YAHOO.COM", &pt).unwrap();
    use sm2::dsa::signature::Verifier;
    vk_alice
        .verify(MSG, &sm2::dsa::Signature::from_slice(&rs_of(&sig)).unwrap())
        .unwrap();
}
