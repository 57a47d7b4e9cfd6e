using System.Text;

namespace AotProxy.Tests.Packaging;

// A shell script as its simple commands, each as words: enough for .ci/run, the Dockerfile's RUN
// lines and the README's commands. Blanks separate words, quotes group them (across lines too,
// as awk's program in .ci/run does), a backslash escapes one character or joins two lines, a
// word that starts with # starts a comment. A newline or an operator (|, ||, &&, ;, &) ends a
// command; operators count when they stand as words of their own ("cmd 2>&1 | tee log"), as
// they do in these files. A command's words stop at its first redirection.
internal static class ShellWords
{
    public static List<string[]> Commands(string script)
    {
        var commands = new List<string[]>();
        var command = new List<string>();
        var redirected = false;
        var word = new StringBuilder();
        var inWord = false;
        var quote = '\0';

        void EndWord()
        {
            if (inWord)
            {
                var text = word.ToString();
                if (text is "|" or "||" or "&&" or ";" or "&")
                {
                    EndCommand();
                }
                else if (redirected || IsRedirection(text))
                {
                    redirected = true;
                }
                else
                {
                    command.Add(text);
                }
            }

            word.Clear();
            inWord = false;
        }

        void EndCommand()
        {
            if (command.Count > 0)
            {
                commands.Add([.. command]);
            }

            command.Clear();
            redirected = false;
        }

        for (var i = 0; i < script.Length; i++)
        {
            var c = script[i];
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
                else
                {
                    word.Append(c);
                }
            }
            else if (c is '\'' or '"')
            {
                quote = c;
                inWord = true;
            }
            else if (c == '\\' && i + 1 < script.Length)
            {
                if (script[++i] != '\n')
                {
                    word.Append(script[i]);
                    inWord = true;
                }
            }
            else if (c == '#' && !inWord)
            {
                while (i + 1 < script.Length && script[i + 1] != '\n')
                {
                    i++; // a comment, to the end of the line
                }
            }
            else if (c == '\n')
            {
                EndWord();
                EndCommand();
            }
            else if (char.IsWhiteSpace(c))
            {
                EndWord();
            }
            else
            {
                word.Append(c);
                inWord = true;
            }
        }

        Assert.True(quote == '\0', "unterminated quote in: " + script);
        EndWord();
        EndCommand();
        return commands;
    }

    private static bool IsRedirection(string word) =>
        word.TrimStart("0123456789".ToCharArray()) is ['<' or '>', ..];
}
