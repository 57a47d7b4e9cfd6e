using System.Collections.Frozen;

namespace AotProxy.Configuration.Validation;

// [forwarding]: the upstream timeouts, and [[models]]' own stream windows.
internal static class ForwardingRules
{
    public static ForwardingModel Validate(ValidationContext context, ForwardingConfig forwarding, FrozenDictionary<string, TimeSpan> modelStreamIdleTimeouts)
    {
        context.Unknown("forwarding", forwarding.Unknown);
        return new ForwardingModel(
            context.Positive("forwarding.connect_timeout", forwarding.ConnectTimeout),
            context.Positive("forwarding.activity_timeout", forwarding.ActivityTimeout),
            context.Positive("forwarding.stream_idle_timeout", forwarding.StreamIdleTimeout),
            modelStreamIdleTimeouts);
    }
}
