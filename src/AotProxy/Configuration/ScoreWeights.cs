namespace AotProxy.Configuration;

// p2c_kv: score = waiting·w + running·w + kv·w + latency_norm·w + error_rate·w (lower wins).
internal readonly record struct ScoreWeights(double Waiting, double Running, double Kv, double Latency, double Error);
