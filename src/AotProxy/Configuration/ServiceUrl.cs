namespace AotProxy.Configuration;

// What [cluster].redis_url and [store].postgres_url read the same way: the credentials before the
// host, and the URL as an error shows it (never the password).
internal static class ServiceUrl
{
    // user[:password], each unescaped; no colon: (user, null); an empty user is none.
    public static (string? User, string? Password) Credentials(Uri uri)
    {
        if (uri.UserInfo.Length == 0)
        {
            return (null, null);
        }

        var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
        var user = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
        var password = colon < 0 ? null : Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
        return (user.Length == 0 ? null : user, password);
    }

    // scheme://***@host...: the credentials hidden.
    public static string Redacted(string url)
    {
        var at = url.LastIndexOf('@');
        var scheme = url.IndexOf("://", StringComparison.Ordinal);
        return at > 0 && scheme > 0 && at > scheme ? string.Concat(url.AsSpan(0, scheme + 3), "***", url.AsSpan(at)) : url;
    }
}
