using System.Text;
using System.Text.Json;
using AotProxy.Inspection;

namespace AotProxy.Tests.Inspection;

public sealed class JsonTextTests
{
    // Each char of a row is one byte (Latin-1), so that rows can hold invalid UTF-8.
    [Theory]
    [InlineData("", true)]
    [InlineData("plain ascii", true)]
    [InlineData("caf\u00C3\u00A9", true)]                   // é in UTF-8
    [InlineData("\\\" \\\\ \\/ \\b \\f \\n \\r \\t", true)]
    [InlineData("\\u0041\\u00e9\\u0000", true)]
    [InlineData("\\ud83d\\ude00 \\uD83D\\uDE00", true)]     // a pair, either case
    [InlineData("\\\\ud800", true)]                         // an escaped backslash, then text
    [InlineData("\\ud800", false)]
    [InlineData("\\ud800x", false)]
    [InlineData("\\ud800\\n", false)]
    [InlineData("\\ud800\\u0041", false)]
    [InlineData("\\udbff\\udbff", false)]
    [InlineData("\\udc00", false)]
    [InlineData("a\\uDFFF\\ud800", false)]
    [InlineData("\u00FF", false)]
    [InlineData("\u00C3(", false)]
    [InlineData("\u00ED\u00A0\u0080", false)]               // a surrogate encoded as UTF-8
    [InlineData("\u00C0\u0080", false)]                     // overlong
    [InlineData("\\u12", false)]                            // cut short
    [InlineData("\\uzzzz", false)]
    [InlineData("\\", false)]
    public void IsValid_AgreesWithWhatTheReaderCanTurnIntoAString(string raw, bool expected)
    {
        var bytes = Encoding.Latin1.GetBytes(raw);

        Assert.Equal(expected, JsonText.IsValid(bytes));
        if (expected)
        {
            // The same text as a JSON string value: GetString takes it.
            byte[] json = [(byte)'"', .. bytes, (byte)'"'];
            var reader = new Utf8JsonReader(json);
            Assert.True(reader.Read());
            Assert.NotNull(reader.GetString());
        }
    }

    [Fact]
    public void IsValid_OnARandomStringValue_IsTrueExactlyWhenGetStringSucceeds()
    {
        var random = new Random(14);
        byte[][] pieces = ["a"u8.ToArray(), "\\ud800"u8.ToArray(), "\\udc00"u8.ToArray(), "\\u0041"u8.ToArray(), "\\n"u8.ToArray(), [0xC3, 0xA9], [0xFF], [0xED, 0xA0, 0x80], [0xF0, 0x9F, 0x98, 0x80]];
        for (var i = 0; i < 20_000; i++)
        {
            var raw = Enumerable.Range(0, random.Next(1, 6)).SelectMany(_ => pieces[random.Next(pieces.Length)]).ToArray();
            byte[] json = [(byte)'"', .. raw, (byte)'"'];
            var reader = new Utf8JsonReader(json);
            reader.Read();
            bool reads;
            try
            {
                reader.GetString();
                reads = true;
            }
            catch (InvalidOperationException)
            {
                reads = false;
            }

            Assert.True(reads == JsonText.IsValid(raw), Encoding.Latin1.GetString(raw));
        }
    }
}
