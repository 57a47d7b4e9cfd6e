using System.Security.Cryptography;
using System.Text;

namespace AotProxy.Identity;

// One public key from the JWKS file, imported once at config load.
// Shared by every request: on Linux an imported RSA/ECDsa key is an OpenSSL EVP_PKEY that is never
// modified after import, and each VerifyData makes its own EVP_PKEY_CTX, so concurrent
// verifications need no lock (JwtValidatorTests checks it under contention).
internal sealed class JwtKey
{
    private readonly RSA? _rsa;
    private readonly ECDsa? _ecdsa;

    private JwtKey(string kid, JwtAlgorithm algorithm, RSA? rsa, ECDsa? ecdsa)
    {
        Kid = kid;
        KidUtf8 = Encoding.UTF8.GetBytes(kid);
        Algorithm = algorithm;
        _rsa = rsa;
        _ecdsa = ecdsa;
    }

    // "" when the JWK has none.
    public string Kid { get; }

    public byte[] KidUtf8 { get; }

    public JwtAlgorithm Algorithm { get; }

    public static JwtKey Rsa(string kid, RSA rsa) => new(kid, JwtAlgorithm.Rs256, rsa, null);

    public static JwtKey Ec(string kid, ECDsa ecdsa) => new(kid, JwtAlgorithm.Es256, null, ecdsa);

    public bool Verify(ReadOnlySpan<byte> signingInput, ReadOnlySpan<byte> signature)
    {
        try
        {
            if (_rsa is not null)
            {
                return _rsa.VerifyData(signingInput, signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            }

            // ES256 signatures are R || S, 32 bytes each (RFC 7518 3.4), never DER.
            return signature.Length == 64
                && _ecdsa!.VerifyData(signingInput, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        catch (CryptographicException)
        {
            // A signature of the wrong length for the key, for example: forged, not an error of ours.
            return false;
        }
    }
}
