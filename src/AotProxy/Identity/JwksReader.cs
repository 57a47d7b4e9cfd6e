using System.Buffers.Text;
using System.Collections.Immutable;
using System.Security.Cryptography;
using System.Text.Json;

namespace AotProxy.Identity;

// jwks_file -> verification keys, at config load (so a reload re-reads the file). Keys the gateway
// cannot use for RS256/ES256 signatures (encryption keys, other curves, other algs) are skipped, so
// an IdP's whole published set can be saved as is; a usable key that is broken is an error.
internal static class JwksReader
{
    // 1 MiB: IdPs publish a few keys, a few KiB; anything near this is not a key set.
    private const long MaxFileBytes = 1 << 20;

    // RFC 7518 3.3: RS256 keys of 2048 bits or more.
    private const int MinRsaBits = 2048;

    public static bool TryRead(string path, out ImmutableArray<JwtKey> keys, out string error)
    {
        keys = [];
        if (Directory.Exists(path))
        {
            error = $"cannot read {path}: it is a directory, not a file";
            return false;
        }

        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (info.Exists && info.Length > MaxFileBytes)
            {
                error = $"{path} is larger than 1 MiB; a JSON Web Key Set is a few KiB";
                return false;
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            // Own words: the AOT binary's runtime messages are resource keys (UseSystemResourceKeys).
            var reason = ex switch
            {
                FileNotFoundException or DirectoryNotFoundException => "no such file",
                UnauthorizedAccessException => "permission denied",
                _ => ex.Message,
            };
            error = $"cannot read {path}: {reason}";
            return false;
        }

        return TryParse(bytes, path, out keys, out error);
    }

    public static bool TryParse(ReadOnlySpan<byte> json, string path, out ImmutableArray<JwtKey> keys, out string error)
    {
        keys = [];
        JsonWebKeySet? set;
        try
        {
            set = JsonSerializer.Deserialize(json, JwksJsonContext.Default.JsonWebKeySet);
        }
        catch (JsonException ex)
        {
            // Own words again: under UseSystemResourceKeys ex.Message is a resource key.
            error = $"{path} is not a JSON Web Key Set: invalid JSON, or a member of the wrong type, at line {(ex.LineNumber ?? 0) + 1}";
            return false;
        }

        if (set?.Keys is not { } listed)
        {
            error = $"{path} is not a JSON Web Key Set: it needs {{\"keys\": [...]}}";
            return false;
        }

        var result = ImmutableArray.CreateBuilder<JwtKey>();
        var kids = new HashSet<(string, JwtAlgorithm)>();
        for (var i = 0; i < listed.Count; i++)
        {
            if (listed[i] is not { } jwk || !IsSigningKey(jwk))
            {
                continue;
            }

            var key = jwk.Kty == "RSA" ? Rsa(jwk, out error) : Ec(jwk, out error);
            if (key is null)
            {
                error = $"{path}: keys[{i}]{KidLabel(jwk)}: {error}";
                return false;
            }

            if (!kids.Add((key.Kid, key.Algorithm)))
            {
                error = key.Kid.Length == 0
                    ? $"{path}: keys[{i}]: several {(key.Algorithm == JwtAlgorithm.Rs256 ? "RSA" : "EC")} keys without a kid; give each a kid, so that tokens can name theirs"
                    : $"{path}: keys[{i}]: kid \"{key.Kid}\" is used twice";
                return false;
            }

            result.Add(key);
        }

        if (result.Count == 0)
        {
            error = $"{path} holds no RS256 or ES256 signing key (kty RSA, or kty EC with crv P-256)";
            return false;
        }

        keys = result.ToImmutable();
        error = "";
        return true;
    }

    // Signing keys of a kind the gateway verifies; everything else is skipped, not refused.
    private static bool IsSigningKey(JsonWebKey jwk)
    {
        if (jwk.Use is { } use && use != "sig")
        {
            return false;
        }

        return jwk.Kty switch
        {
            "RSA" => jwk.Alg is null or "RS256",
            "EC" => jwk.Crv == "P-256" && (jwk.Alg is null or "ES256"),
            _ => false,
        };
    }

    private static JwtKey? Rsa(JsonWebKey jwk, out string error)
    {
        if (!TryDecode(jwk.N, out var modulus) || !TryDecode(jwk.E, out var exponent) || exponent.Length == 0)
        {
            error = "an RSA key needs \"n\" and \"e\" in base64url";
            return null;
        }

        // RFC 7518 6.3.1.1 forbids leading zero octets, but some tools write one; the key size must not count it.
        var start = 0;
        while (start < modulus.Length - 1 && modulus[start] == 0)
        {
            start++;
        }

        RSA rsa;
        try
        {
            rsa = System.Security.Cryptography.RSA.Create(new RSAParameters { Modulus = modulus[start..], Exponent = exponent });
        }
        catch (CryptographicException)
        {
            error = "not a valid RSA public key";
            return null;
        }

        if (rsa.KeySize < MinRsaBits)
        {
            error = $"the RSA key has {rsa.KeySize} bits; RS256 needs at least {MinRsaBits}";
            rsa.Dispose();
            return null;
        }

        error = "";
        return JwtKey.Rsa(jwk.Kid ?? "", rsa);
    }

    private static JwtKey? Ec(JsonWebKey jwk, out string error)
    {
        // RFC 7518 6.2.1.2: the full 32 octets for P-256, leading zeros included.
        if (!TryDecode(jwk.X, out var x) || !TryDecode(jwk.Y, out var y) || x.Length != 32 || y.Length != 32)
        {
            error = "a P-256 key needs \"x\" and \"y\" of 32 bytes each, in base64url";
            return null;
        }

        try
        {
            var ecdsa = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, Q = new ECPoint { X = x, Y = y } });
            error = "";
            return JwtKey.Ec(jwk.Kid ?? "", ecdsa);
        }
        catch (CryptographicException)
        {
            error = "the point (x, y) is not on the P-256 curve";
            return null;
        }
    }

    private static bool TryDecode(string? text, out byte[] bytes)
    {
        bytes = [];
        if (string.IsNullOrEmpty(text))
        {
            return false;
        }

        var buffer = new byte[Base64Url.GetMaxDecodedLength(text.Length)];
        if (!JwtValidator.TryDecode(text, buffer, out var written))
        {
            return false;
        }

        bytes = buffer[..written];
        return true;
    }

    private static string KidLabel(JsonWebKey jwk) => jwk.Kid is { Length: > 0 } kid ? $" (kid \"{kid}\")" : "";
}
