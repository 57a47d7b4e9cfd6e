namespace AotProxy.Configuration;

// What an admin token may do: Read answers GET only, Admin everything.
internal enum AdminRole
{
    Read,
    Admin,
}
