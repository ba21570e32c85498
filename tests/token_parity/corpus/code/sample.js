// Debounce with a trailing call, plus some modern syntax.
export const debounce = (fn, ms = 250) => {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn.apply(this, args), ms);
  };
};

const user = { name: 'Ada', tags: ['math', 'engines'], address: null };
console.log(`Hello, ${user?.name ?? 'anon'}! You have ${user.tags.length} tags.`);
const re = /^(?<year>\d{4})-(?<month>\d{2})$/u;
if ('2024-07'.match(re)?.groups?.year === '2024') { console.log(0x1f_ff, 1e-9, 10n ** 20n); }
