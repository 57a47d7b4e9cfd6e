namespace AotProxy.Admission.TimeWindows;

// One of the five fields of a cron expression: its range, and the names it accepts
// (Names[i] stands for the value NameBase + i).
internal sealed record CronField(string Name, int Min, int Max, string[]? Names = null, int NameBase = 0)
{
    public static readonly CronField Minute = new("minute", 0, 59);
    public static readonly CronField Hour = new("hour", 0, 23);
    public static readonly CronField DayOfMonth = new("day-of-month", 1, 31);
    public static readonly CronField Month = new("month", 1, 12, ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], NameBase: 1);

    // 0..7: both 0 and 7 are Sunday (Vixie cron); 7 folds onto 0 after parsing.
    public static readonly CronField DayOfWeek = new("day-of-week", 0, 7, ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]);
}
