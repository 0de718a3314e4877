//! A jsonwebtoken `CryptoProvider` on ring, so the tree has one crypto stack: no aws-lc, no `rsa`
//! crate (RUSTSEC-2023-0071).

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature as rsig;

/// Installs the ring provider as jsonwebtoken's process default. Harmless when a provider is
/// already installed (by an earlier call, or by the application): that one stays.
pub(crate) fn install() {
    let _ = PROVIDER.install_default();
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: new_verifier,
    // What publishing keys as JWKs needs (`Jwk::from_encoding_key`, thumbprints), on ring too:
    // jsonwebtoken's placeholder would panic.
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_public_from_private,
        rsa_pub_components_from_public_key: rsa_public_from_public,
        ec_pub_components_from_private_key: ec_public_from_private,
        ed_pub_components_from_private_key: ed_public_from_private,
        compute_digest: digest,
    },
};

fn rsa_public_from_private(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair = rsig::RsaKeyPair::from_der(der)
        .or_else(|_| rsig::RsaKeyPair::from_pkcs8(der))
        .map_err(|e| Error::from(ErrorKind::InvalidRsaKey(e.to_string())))?;
    let components = rsig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    Ok((components.n, components.e))
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (DER).
fn rsa_public_from_public(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    fn read(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&first, rest) = input.split_first()?;
        if first != tag {
            return None;
        }
        let (&len, rest) = rest.split_first()?;
        let (len, rest) = if len < 0x80 {
            (usize::from(len), rest)
        } else {
            let n = usize::from(len & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let strip = |int: &[u8]| {
        let start = int.iter().position(|b| *b != 0).unwrap_or(int.len());
        int[start..].to_vec()
    };
    let parse = || {
        let (body, _) = read(der, 0x30)?;
        let (n, rest) = read(body, 0x02)?;
        let (e, _) = read(rest, 0x02)?;
        Some((strip(n), strip(e)))
    };
    parse().ok_or_else(invalid_key)
}

fn ec_public_from_private(
    der: &[u8],
    algorithm: Algorithm,
) -> Result<(jsonwebtoken::jwk::EllipticCurve, Vec<u8>, Vec<u8>)> {
    use jsonwebtoken::jwk::EllipticCurve;
    let (signing, curve, size) = match algorithm {
        Algorithm::ES256 => (
            &rsig::ECDSA_P256_SHA256_FIXED_SIGNING,
            EllipticCurve::P256,
            32,
        ),
        Algorithm::ES384 => (
            &rsig::ECDSA_P384_SHA384_FIXED_SIGNING,
            EllipticCurve::P384,
            48,
        ),
        _ => return Err(invalid_key()),
    };
    let pair = rsig::EcdsaKeyPair::from_pkcs8(signing, der, &SystemRandom::new())
        .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?;
    // An uncompressed point: 0x04 || x || y.
    let point = rsig::KeyPair::public_key(&pair).as_ref();
    if point.len() != 1 + 2 * size || point[0] != 4 {
        return Err(ErrorKind::InvalidEcdsaKey.into());
    }
    Ok((curve, point[1..=size].to_vec(), point[1 + size..].to_vec()))
}

fn ed_public_from_private(
    der: &[u8],
    _curve: &jsonwebtoken::jwk::EllipticCurve,
) -> Result<Vec<u8>> {
    let pair = rsig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
        .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?;
    Ok(rsig::KeyPair::public_key(&pair).as_ref().to_vec())
}

fn digest(data: &[u8], hash: jsonwebtoken::jwk::ThumbprintHash) -> Result<Vec<u8>> {
    use jsonwebtoken::jwk::ThumbprintHash;
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &ring::digest::SHA256,
        ThumbprintHash::SHA384 => &ring::digest::SHA384,
        ThumbprintHash::SHA512 => &ring::digest::SHA512,
        _ => return Err(ErrorKind::UnsupportedAlgorithm.into()),
    };
    Ok(ring::digest::digest(algorithm, data).as_ref().to_vec())
}

fn invalid_key() -> Error {
    ErrorKind::InvalidKeyFormat.into()
}

enum SigningKey {
    Hmac(ring::hmac::Key),
    Ecdsa(rsig::EcdsaKeyPair),
    Ed25519(rsig::Ed25519KeyPair),
    Rsa(rsig::RsaKeyPair, &'static dyn rsig::RsaEncoding),
}

struct RingSigner {
    algorithm: Algorithm,
    key: SigningKey,
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let rng = SystemRandom::new();
        match &self.key {
            SigningKey::Hmac(key) => Ok(ring::hmac::sign(key, msg).as_ref().to_vec()),
            SigningKey::Ecdsa(pair) => pair
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| signature::Error::new()),
            SigningKey::Ed25519(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
            SigningKey::Rsa(pair, encoding) => {
                let mut out = vec![0u8; pair.public().modulus_len()];
                pair.sign(*encoding, &rng, msg, &mut out)
                    .map_err(|_| signature::Error::new())?;
                Ok(out)
            }
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn new_signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let der = key.as_bytes();
    let family = key.family();
    let signing = match (algorithm, family) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => {
            SigningKey::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, der))
        }
        (Algorithm::HS384, AlgorithmFamily::Hmac) => {
            SigningKey::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA384, der))
        }
        (Algorithm::HS512, AlgorithmFamily::Hmac) => {
            SigningKey::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA512, der))
        }
        (Algorithm::ES256 | Algorithm::ES384, AlgorithmFamily::Ec) => {
            let alg = if *algorithm == Algorithm::ES256 {
                &rsig::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &rsig::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            SigningKey::Ecdsa(
                rsig::EcdsaKeyPair::from_pkcs8(alg, der, &SystemRandom::new())
                    .map_err(|_| Error::from(ErrorKind::InvalidEcdsaKey))?,
            )
        }
        (Algorithm::EdDSA, AlgorithmFamily::Ed) => SigningKey::Ed25519(
            rsig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map_err(|_| Error::from(ErrorKind::InvalidEddsaKey))?,
        ),
        (
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
            AlgorithmFamily::Rsa,
        ) => {
            let pair = rsig::RsaKeyPair::from_der(der)
                .or_else(|_| rsig::RsaKeyPair::from_pkcs8(der))
                .map_err(|e| Error::from(ErrorKind::InvalidRsaKey(e.to_string())))?;
            let encoding: &'static dyn rsig::RsaEncoding = match algorithm {
                Algorithm::RS256 => &rsig::RSA_PKCS1_SHA256,
                Algorithm::RS384 => &rsig::RSA_PKCS1_SHA384,
                Algorithm::RS512 => &rsig::RSA_PKCS1_SHA512,
                Algorithm::PS256 => &rsig::RSA_PSS_SHA256,
                Algorithm::PS384 => &rsig::RSA_PSS_SHA384,
                _ => &rsig::RSA_PSS_SHA512,
            };
            SigningKey::Rsa(pair, encoding)
        }
        _ => return Err(invalid_key()),
    };
    Ok(Box::new(RingSigner {
        algorithm: *algorithm,
        key: signing,
    }))
}

enum VerifyingKey {
    Hmac(ring::hmac::Key),
    Public(rsig::UnparsedPublicKey<Vec<u8>>),
    RsaComponents(
        rsig::RsaPublicKeyComponents<Vec<u8>>,
        &'static rsig::RsaParameters,
    ),
}

struct RingVerifier {
    algorithm: Algorithm,
    key: VerifyingKey,
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let ok = match &self.key {
            // Constant-time comparison inside ring.
            VerifyingKey::Hmac(key) => ring::hmac::verify(key, msg, signature).is_ok(),
            VerifyingKey::Public(key) => key.verify(msg, signature).is_ok(),
            VerifyingKey::RsaComponents(key, params) => key.verify(params, msg, signature).is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(signature::Error::new())
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn rsa_params(algorithm: Algorithm) -> &'static rsig::RsaParameters {
    match algorithm {
        Algorithm::RS256 => &rsig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::RS384 => &rsig::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &rsig::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &rsig::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &rsig::RSA_PSS_2048_8192_SHA384,
        _ => &rsig::RSA_PSS_2048_8192_SHA512,
    }
}

fn new_verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    // The key's family must match the algorithm: an HMAC algorithm never runs with a public key
    // as its secret (algorithm confusion), and the reverse.
    let verifying = match (algorithm, key.family(), key.kind()) {
        (
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512,
            AlgorithmFamily::Hmac,
            DecodingKeyKind::SecretOrDer(secret),
        ) => {
            let alg = match algorithm {
                Algorithm::HS256 => ring::hmac::HMAC_SHA256,
                Algorithm::HS384 => ring::hmac::HMAC_SHA384,
                _ => ring::hmac::HMAC_SHA512,
            };
            VerifyingKey::Hmac(ring::hmac::Key::new(alg, secret))
        }
        (Algorithm::ES256, AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => {
            VerifyingKey::Public(rsig::UnparsedPublicKey::new(
                &rsig::ECDSA_P256_SHA256_FIXED,
                point.clone(),
            ))
        }
        (Algorithm::ES384, AlgorithmFamily::Ec, DecodingKeyKind::SecretOrDer(point)) => {
            VerifyingKey::Public(rsig::UnparsedPublicKey::new(
                &rsig::ECDSA_P384_SHA384_FIXED,
                point.clone(),
            ))
        }
        (Algorithm::EdDSA, AlgorithmFamily::Ed, DecodingKeyKind::SecretOrDer(public)) => {
            VerifyingKey::Public(rsig::UnparsedPublicKey::new(&rsig::ED25519, public.clone()))
        }
        (alg, AlgorithmFamily::Rsa, DecodingKeyKind::SecretOrDer(der))
            if alg.family() == AlgorithmFamily::Rsa =>
        {
            VerifyingKey::Public(rsig::UnparsedPublicKey::new(rsa_params(*alg), der.clone()))
        }
        (alg, AlgorithmFamily::Rsa, DecodingKeyKind::RsaModulusExponent { n, e })
            if alg.family() == AlgorithmFamily::Rsa =>
        {
            VerifyingKey::RsaComponents(
                rsig::RsaPublicKeyComponents {
                    n: n.clone(),
                    e: e.clone(),
                },
                rsa_params(*alg),
            )
        }
        _ => return Err(invalid_key()),
    };
    Ok(Box::new(RingVerifier {
        algorithm: *algorithm,
        key: verifying,
    }))
}
