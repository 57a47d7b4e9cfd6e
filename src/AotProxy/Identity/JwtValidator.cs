using System.Buffers;
using System.Buffers.Text;
using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using AotProxy.Configuration;
using AotProxy.Inspection;

namespace AotProxy.Identity;

// Compact JWS bearer tokens (RFC 7515, RFC 7519) -> tenant and class, built once per snapshot.
// The token is decoded into one stack (or pooled) buffer and read with Utf8JsonReader: no strings,
// no DOM. The signature is checked before any claim is believed. Only HS256 (the configured secret),
// RS256 and ES256 (the JWKS keys) verify, each with its own key material, so an HS256 token "signed"
// with a published RSA key (the classic alg confusion) finds no HS256 secret to verify against.
internal sealed class JwtValidator
{
    // 8 KiB: IdP access tokens are 0.5-2 KiB; Kestrel's whole request head is capped at 32 KiB anyway.
    public const int MaxTokenChars = 8192;

    // Configured tenant and class names longer than this are not names but noise.
    private const int MaxNameChars = 256;
    private const int MaxKidBytes = 256;

    // Typical tokens (< 1.2 KiB) decode on the stack; larger ones rent from the pool.
    private const int StackBufferBytes = 2048;

    private static readonly SearchValues<char> TokenChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.");

    private readonly JwtModel _model;
    private readonly byte[] _issuer;
    private readonly byte[] _audience;
    private readonly byte[] _tenantClaim;
    private readonly byte[] _classClaim;
    private readonly double _skewSeconds;
    private readonly FrozenDictionary<string, TenantModel>.AlternateLookup<ReadOnlySpan<char>> _tenants;
    private readonly FrozenDictionary<string, ClassModel>.AlternateLookup<ReadOnlySpan<char>> _classes;

    public JwtValidator(JwtModel model, FrozenDictionary<string, TenantModel> tenants, FrozenDictionary<string, ClassModel> classes)
    {
        _model = model;
        _issuer = Encoding.UTF8.GetBytes(model.Issuer);
        _audience = Encoding.UTF8.GetBytes(model.Audience);
        _tenantClaim = Encoding.UTF8.GetBytes(model.TenantClaim);
        _classClaim = Encoding.UTF8.GetBytes(model.ClassClaim);
        _skewSeconds = model.ClockSkew.TotalSeconds;
        _tenants = tenants.GetAlternateLookup<ReadOnlySpan<char>>();
        _classes = classes.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    // Three base64url segments: header.payload.signature (the signature may be empty, so that
    // an "alg":"none" token is recognised as a token and refused as one, not as an unknown key).
    public static bool LooksLikeJwt(ReadOnlySpan<char> token)
    {
        var first = token.IndexOf('.');
        if (first <= 0)
        {
            return false;
        }

        var rest = token[(first + 1)..];
        var second = rest.IndexOf('.');
        return second > 0 && !rest[(second + 1)..].Contains('.') && !token.ContainsAnyExcept(TokenChars);
    }

    public IdentifyFailure Validate(ReadOnlySpan<char> token, DateTimeOffset now, out TenantModel? tenant, out ClassModel? tokenClass)
    {
        tenant = null;
        tokenClass = null;
        if (token.Length > MaxTokenChars)
        {
            return IdentifyFailure.TokenTooLarge;
        }

        if (!LooksLikeJwt(token))
        {
            return IdentifyFailure.MalformedToken;
        }

        var headerEnd = token.IndexOf('.');
        var signedEnd = headerEnd + 1 + token[(headerEnd + 1)..].IndexOf('.');
        var header = token[..headerEnd];
        var payload = token[(headerEnd + 1)..signedEnd];
        var signature = token[(signedEnd + 1)..];

        // The ASCII signing input, then the decoded header, signature and payload, side by side.
        var need = signedEnd
            + Base64Url.GetMaxDecodedLength(header.Length)
            + Base64Url.GetMaxDecodedLength(payload.Length)
            + Base64Url.GetMaxDecodedLength(signature.Length);
        byte[]? rented = null;
        var buffer = need <= StackBufferBytes ? stackalloc byte[StackBufferBytes] : (rented = ArrayPool<byte>.Shared.Rent(need));
        try
        {
            var failure = Check(token[..signedEnd], header, payload, signature, buffer, now, out tenant, out tokenClass);
            if (failure != IdentifyFailure.None)
            {
                tenant = null;
                tokenClass = null;
            }

            return failure;
        }
        catch (JsonException)
        {
            // Utf8JsonReader's verdict on invalid JSON: rare (a broken client or a probe), so an exception is fine here.
            tenant = null;
            tokenClass = null;
            return IdentifyFailure.MalformedToken;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented, clearArray: true); // it held a bearer credential
            }
        }
    }

    private IdentifyFailure Check(
        ReadOnlySpan<char> signed, ReadOnlySpan<char> header, ReadOnlySpan<char> payload, ReadOnlySpan<char> signature,
        Span<byte> buffer, DateTimeOffset now, out TenantModel? tenant, out ClassModel? tokenClass)
    {
        tenant = null;
        tokenClass = null;
        var signingInput = buffer[..signed.Length];
        Ascii.FromUtf16(signed, signingInput, out _); // LooksLikeJwt: every char is ASCII
        var rest = buffer[signed.Length..];
        if (!TryDecode(header, rest, out var headerLength))
        {
            return IdentifyFailure.MalformedToken;
        }

        var headerJson = rest[..headerLength];
        if (!JsonText.IsValid(headerJson))
        {
            return IdentifyFailure.InvalidText;
        }

        rest = rest[headerLength..];
        if (!TryDecode(signature, rest, out var signatureLength))
        {
            return IdentifyFailure.MalformedToken;
        }

        var signatureBytes = rest[..signatureLength];
        rest = rest[signatureLength..];

        Span<byte> kid = stackalloc byte[MaxKidBytes];
        var failure = ReadHeader(headerJson, kid, out var algorithm, out var kidLength);
        if (failure != IdentifyFailure.None)
        {
            return failure;
        }

        failure = Verify(algorithm, hasKid: kidLength >= 0, kid[..Math.Max(kidLength, 0)], signingInput, signatureBytes);
        if (failure != IdentifyFailure.None)
        {
            return failure;
        }

        if (!TryDecode(payload, rest, out var payloadLength))
        {
            return IdentifyFailure.MalformedToken;
        }

        var claimsJson = rest[..payloadLength];
        return JsonText.IsValid(claimsJson) ? ReadClaims(claimsJson, now, out tenant, out tokenClass) : IdentifyFailure.InvalidText;
    }

    // Base64Url.TryDecodeFromChars throws on invalid input; the OperationStatus form reports it.
    public static bool TryDecode(ReadOnlySpan<char> base64Url, Span<byte> destination, out int written) =>
        Base64Url.DecodeFromChars(base64Url, destination, out var consumed, out written, isFinalBlock: true) == OperationStatus.Done
        && consumed == base64Url.Length;

    // kidLength -1: the header has no kid.
    private static IdentifyFailure ReadHeader(ReadOnlySpan<byte> json, Span<byte> kid, out JwtAlgorithm algorithm, out int kidLength)
    {
        algorithm = default;
        kidLength = -1;
        var sawAlg = false;
        var knownAlg = false;
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return IdentifyFailure.MalformedToken;
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("alg"u8))
            {
                if (sawAlg || !reader.Read() || reader.TokenType != JsonTokenType.String)
                {
                    return IdentifyFailure.MalformedToken;
                }

                sawAlg = true;
                knownAlg = true;
                if (reader.ValueTextEquals("HS256"u8))
                {
                    algorithm = JwtAlgorithm.Hs256;
                }
                else if (reader.ValueTextEquals("RS256"u8))
                {
                    algorithm = JwtAlgorithm.Rs256;
                }
                else if (reader.ValueTextEquals("ES256"u8))
                {
                    algorithm = JwtAlgorithm.Es256;
                }
                else
                {
                    knownAlg = false; // "none" among them
                }
            }
            else if (reader.ValueTextEquals("kid"u8))
            {
                if (kidLength >= 0 || !reader.Read() || reader.TokenType != JsonTokenType.String)
                {
                    return IdentifyFailure.MalformedToken;
                }

                if (reader.ValueSpan.Length > kid.Length || reader.HasValueSequence)
                {
                    return IdentifyFailure.UnknownKey;
                }

                kidLength = reader.CopyString(kid);
            }
            else if (reader.ValueTextEquals("crit"u8))
            {
                return IdentifyFailure.UnsupportedHeader;
            }
            else
            {
                // typ, cty, and also jku, x5u and jwk: keys are only ever taken from the config.
                reader.Skip();
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
        {
            return IdentifyFailure.MalformedToken;
        }

        if (!sawAlg)
        {
            return IdentifyFailure.MalformedToken;
        }

        return knownAlg ? IdentifyFailure.None : IdentifyFailure.UnsupportedAlgorithm;
    }

    private IdentifyFailure Verify(JwtAlgorithm algorithm, bool hasKid, ReadOnlySpan<byte> kid, ReadOnlySpan<byte> signingInput, ReadOnlySpan<byte> signature)
    {
        if (algorithm == JwtAlgorithm.Hs256)
        {
            if (_model.Hs256Secret.IsEmpty)
            {
                return IdentifyFailure.UnsupportedAlgorithm;
            }

            if (signature.Length != HMACSHA256.HashSizeInBytes)
            {
                return IdentifyFailure.BadSignature;
            }

            Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
            HMACSHA256.HashData(_model.Hs256Secret.AsSpan(), signingInput, mac);
            return CryptographicOperations.FixedTimeEquals(mac, signature) ? IdentifyFailure.None : IdentifyFailure.BadSignature;
        }

        JwtKey? match = null;
        var candidates = 0;
        foreach (var key in _model.Keys)
        {
            if (key.Algorithm != algorithm)
            {
                continue;
            }

            candidates++;
            if (!hasKid || kid.SequenceEqual(key.KidUtf8))
            {
                match ??= key;
            }
        }

        if (candidates == 0)
        {
            return IdentifyFailure.UnsupportedAlgorithm;
        }

        // Without a kid, only a single key of the token's type may verify it: trying each in turn
        // would turn one forged token into several verification attempts.
        if (match is null || (!hasKid && candidates > 1))
        {
            return IdentifyFailure.UnknownKey;
        }

        return match.Verify(signingInput, signature) ? IdentifyFailure.None : IdentifyFailure.BadSignature;
    }

    private IdentifyFailure ReadClaims(ReadOnlySpan<byte> json, DateTimeOffset now, out TenantModel? tenant, out ClassModel? tokenClass)
    {
        tenant = null;
        tokenClass = null;
        double? exp = null, nbf = null, iat = null;
        bool sawIss = false, issuerMatches = false, sawAud = false, audienceMatches = false;
        bool sawTenant = false, tenantIsString = false, sawClass = false;
        Span<char> name = stackalloc char[MaxNameChars];
        var reader = new Utf8JsonReader(json);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
        {
            return IdentifyFailure.MalformedToken;
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("exp"u8))
            {
                if (exp.HasValue || !TryReadTime(ref reader, out var value))
                {
                    return IdentifyFailure.MalformedToken;
                }

                exp = value;
            }
            else if (reader.ValueTextEquals("nbf"u8))
            {
                if (nbf.HasValue || !TryReadTime(ref reader, out var value))
                {
                    return IdentifyFailure.MalformedToken;
                }

                nbf = value;
            }
            else if (reader.ValueTextEquals("iat"u8))
            {
                if (iat.HasValue || !TryReadTime(ref reader, out var value))
                {
                    return IdentifyFailure.MalformedToken;
                }

                iat = value;
            }
            else if (reader.ValueTextEquals("iss"u8))
            {
                if (sawIss)
                {
                    return IdentifyFailure.MalformedToken;
                }

                sawIss = true;
                reader.Read();
                issuerMatches = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals(_issuer);
                reader.Skip();
            }
            else if (reader.ValueTextEquals("aud"u8))
            {
                if (sawAud)
                {
                    return IdentifyFailure.MalformedToken;
                }

                sawAud = true;
                audienceMatches = ReadAudience(ref reader);
            }
            else if (reader.ValueTextEquals(_tenantClaim))
            {
                if (sawTenant)
                {
                    return IdentifyFailure.MalformedToken;
                }

                sawTenant = true;
                var length = ReadName(ref reader, name);
                tenantIsString = reader.TokenType == JsonTokenType.String;
                if (length >= 0 && _tenants.TryGetValue(name[..length], out var found))
                {
                    tenant = found;
                }
            }
            else if (_classClaim.Length > 0 && reader.ValueTextEquals(_classClaim))
            {
                if (sawClass)
                {
                    return IdentifyFailure.MalformedToken;
                }

                sawClass = true;
                var length = ReadName(ref reader, name);
                if (length >= 0 && _classes.TryGetValue(name[..length], out var found))
                {
                    tokenClass = found;
                }
            }
            else
            {
                reader.Skip();
            }
        }

        if (reader.TokenType != JsonTokenType.EndObject || reader.Read())
        {
            return IdentifyFailure.MalformedToken;
        }

        // RFC 7519 4.1.4-6, with the configured skew for clocks that drift apart.
        var nowSeconds = now.ToUnixTimeMilliseconds() / 1000.0;
        if (exp is not { } expires)
        {
            return IdentifyFailure.MissingExpiry; // a bearer token that never expires is a password
        }

        if (nowSeconds >= expires + _skewSeconds)
        {
            return IdentifyFailure.Expired;
        }

        if (nbf > nowSeconds + _skewSeconds || iat > nowSeconds + _skewSeconds)
        {
            return IdentifyFailure.NotYetValid;
        }

        if (_issuer.Length > 0 && !issuerMatches)
        {
            return IdentifyFailure.WrongIssuer;
        }

        if (_audience.Length > 0 && !audienceMatches)
        {
            return IdentifyFailure.WrongAudience;
        }

        if (!tenantIsString)
        {
            return IdentifyFailure.MissingTenantClaim;
        }

        if (tenant is null)
        {
            return IdentifyFailure.UnknownTenant;
        }

        return sawClass && tokenClass is null ? IdentifyFailure.UnknownClass : IdentifyFailure.None;
    }

    // The reader is on the claim's name; leaves it on the value's last token.
    private static bool TryReadTime(ref Utf8JsonReader reader, out double seconds)
    {
        seconds = 0;
        return reader.Read()
            && reader.TokenType == JsonTokenType.Number
            && reader.TryGetDouble(out seconds)
            && double.IsFinite(seconds);
    }

    // aud is a string or an array of strings (RFC 7519 4.1.3); it matches when one of them is ours.
    private bool ReadAudience(ref Utf8JsonReader reader)
    {
        reader.Read();
        if (reader.TokenType == JsonTokenType.String)
        {
            return reader.ValueTextEquals(_audience);
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            reader.Skip();
            return false;
        }

        var matches = false;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType == JsonTokenType.String)
            {
                matches |= reader.ValueTextEquals(_audience);
            }
            else
            {
                reader.Skip();
            }
        }

        return matches;
    }

    // The claim's string value, unescaped into name: its length, or -1 when it is not a string or
    // too long to be a configured name.
    private static int ReadName(ref Utf8JsonReader reader, scoped Span<char> name)
    {
        reader.Read();
        if (reader.TokenType != JsonTokenType.String)
        {
            reader.Skip();
            return -1;
        }

        // UTF-8 never takes fewer bytes than UTF-16 chars, escaped or not, so this bound makes CopyString safe.
        return reader.ValueSpan.Length > name.Length || reader.HasValueSequence ? -1 : reader.CopyString(name);
    }
}
