const UNITS: readonly (readonly [number, string])[] = [
  [2 ** 40, "T"],
  [2 ** 30, "G"],
  [2 ** 20, "M"],
  [2 ** 10, "K"],
];

/** Human sizes for page sizes and ranges: 4096 -> "4K", 2 MiB -> "2M". */
export function sizeName(n: number): string {
  for (const [u, s] of UNITS) if (n >= u && n % u === 0) return `${n / u}${s}`;
  return String(n);
}
