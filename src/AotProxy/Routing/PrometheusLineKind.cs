namespace AotProxy.Routing;

internal enum PrometheusLineKind : byte
{
    Ignored, // a blank line, # HELP, # TYPE or any other comment
    Sample,  // name, optional labels, value, optional timestamp
    Invalid, // anything else: the reader skips it and counts it
}
