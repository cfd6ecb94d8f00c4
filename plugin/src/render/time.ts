// Ages like kubectl prints them (k8s.io/apimachinery/pkg/util/duration.HumanDuration).
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  return `${Math.floor(hours / 24 / 365)}y`;
}

/** "5m ago" / "in 5m" from an RFC 3339 time; the time itself when it does not parse. */
export function relative(at: string, now: Date): string {
  const t = Date.parse(at);
  if (Number.isNaN(t)) return at;
  const d = now.getTime() - t;
  return d >= 0 ? `${humanDuration(d)} ago` : `in ${humanDuration(-d)}`;
}
