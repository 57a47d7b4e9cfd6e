using System.Globalization;

namespace AotProxy.Http;

// Status codes as label values, made once instead of per request.
internal static class StatusText
{
    private static readonly string[] Codes = Enumerable.Range(0, 600).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray();

    public static string Of(int status) => (uint)status < (uint)Codes.Length ? Codes[status] : status.ToString(CultureInfo.InvariantCulture);
}
