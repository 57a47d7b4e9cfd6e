namespace AotProxy.Configuration;

// How a top-level name is written: [name] (or dotted keys, or an inline table), [[name]]
// (or an array of inline tables), another array, or a plain value.
internal enum TomlShape
{
    Table,
    ArrayOfTables,
    Array,
    Scalar,
}
