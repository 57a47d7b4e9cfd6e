# syntax=docker/dockerfile:1
# Build: the SDK image publishes the Native AOT binary (the same command as .ci/run).
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends clang lld zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN dotnet publish src/AotProxy/AotProxy.csproj -c Release -r linux-x64 -o artifacts/aot
# The ledger's directory, made here: the chiseled image has no shell to mkdir in.
RUN mkdir -p /out/ledger

# Run: chiseled runtime-deps (distroless: no shell, no package manager), one static-ish binary,
# non-root. Mount your config over /etc/aotproxy (it must listen on 0.0.0.0 inside a container).
# The usage ledger (SQLite) needs its native library next to the binary, and a directory the app
# user (uid 1654) can write: /var/lib/aotproxy, a volume so that usage survives the container.
FROM mcr.microsoft.com/dotnet/runtime-deps:10.0-noble-chiseled AS final
WORKDIR /app
COPY --from=build /src/artifacts/aot/aotproxy /app/aotproxy
COPY --from=build /src/artifacts/aot/libe_sqlite3.so /app/libe_sqlite3.so
COPY --from=build --chown=1654:1654 /out/ledger /var/lib/aotproxy
COPY configs/container.toml /etc/aotproxy/aotproxy.toml
USER 1654:1654
VOLUME ["/etc/aotproxy", "/var/lib/aotproxy"]
EXPOSE 8080 9090
ENTRYPOINT ["/app/aotproxy"]
CMD ["serve", "--config", "/etc/aotproxy/aotproxy.toml"]
