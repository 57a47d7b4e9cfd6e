using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace AotProxy.Testing;

// Compact JWS tokens and JWKS files made the way an IdP makes them, for the gateway to verify.
internal static class TestJwt
{
    // 40 bytes: above HS256's 32-byte minimum.
    public const string Secret = "test-hs256-secret-0123456789-abcdefghijk";

    public static string Segment(string json) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));

    public static string Hs256(string claims, string? header = null, string secret = Secret) =>
        Sign(header ?? """{"alg":"HS256","typ":"JWT"}""", claims, input => HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), input));

    public static string Rs256(RSA rsa, string claims, string? kid = null, string? header = null) =>
        Sign(header ?? Header("RS256", kid), claims, input => rsa.SignData(input, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));

    public static string Es256(ECDsa ecdsa, string claims, string? kid = null, string? header = null) =>
        Sign(header ?? Header("ES256", kid), claims, input => ecdsa.SignData(input, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));

    public static string Sign(string header, string claims, Func<byte[], byte[]> sign) =>
        Sign(Encoding.UTF8.GetBytes(header), Encoding.UTF8.GetBytes(claims), sign);

    // Header and claims as raw bytes, for JSON that no .NET string can hold (invalid UTF-8).
    public static string Sign(byte[] header, byte[] claims, Func<byte[], byte[]> sign)
    {
        var signed = Base64Url.EncodeToString(header) + "." + Base64Url.EncodeToString(claims);
        return signed + "." + Base64Url.EncodeToString(sign(Encoding.ASCII.GetBytes(signed)));
    }

    public static string Hs256(byte[] claims, byte[] header, string secret = Secret) =>
        Sign(header, claims, input => HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), input));

    // Claims for tenant at now: valid from a minute ago for an hour, unless told otherwise.
    public static string Claims(string tenant, DateTimeOffset now, string extra = "", long? exp = null)
    {
        var seconds = now.ToUnixTimeSeconds();
        return $$"""{"sub":"user-1","tenant":"{{tenant}}","iat":{{seconds - 60}},"exp":{{exp ?? seconds + 3600}}{{(extra.Length == 0 ? "" : "," + extra)}}}""";
    }

    public static string RsaJwk(RSA rsa, string? kid)
    {
        var p = rsa.ExportParameters(false);
        return $$"""{"kty":"RSA","use":"sig",{{Kid(kid)}}"n":"{{Base64Url.EncodeToString(p.Modulus!)}}","e":"{{Base64Url.EncodeToString(p.Exponent!)}}"}""";
    }

    public static string EcJwk(ECDsa ecdsa, string? kid)
    {
        var p = ecdsa.ExportParameters(false);
        return $$"""{"kty":"EC","crv":"P-256",{{Kid(kid)}}"x":"{{Base64Url.EncodeToString(p.Q.X!)}}","y":"{{Base64Url.EncodeToString(p.Q.Y!)}}"}""";
    }

    public static string Jwks(params string[] keys) => $$"""{"keys":[{{string.Join(",", keys)}}]}""";

    private static string Header(string alg, string? kid) =>
        kid is null ? $$"""{"alg":"{{alg}}","typ":"JWT"}""" : $$"""{"alg":"{{alg}}","typ":"JWT","kid":"{{kid}}"}""";

    private static string Kid(string? kid) => kid is null ? "" : $"\"kid\":\"{kid}\",";
}
