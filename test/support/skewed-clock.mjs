// Preloaded with `node --import` to run a process whose clock is off by TFA_TEST_CLOCK_OFFSET_MS
// (negative: behind), as a badly synchronised server would be.
const offset = Number(process.env.TFA_TEST_CLOCK_OFFSET_MS ?? 0);
const realNow = Date.now.bind(Date);
Date.now = () => realNow() + offset;
