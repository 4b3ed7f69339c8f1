/** A step's trace records as `run --trace` prints them: the CLI's own renderer (src/sim/trace-view.ts, no runtime imports), bundled into the page. */
export { renderTraceLine as traceLine } from "../sim/trace-view.ts";
