// A tiny calculator module with a bug for the local market's demo: add() subtracts.
export function add(a, b) {
  return a - b;
}

export function mul(a, b) {
  return a * b;
}
