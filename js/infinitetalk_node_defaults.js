// Defaults of freshly added InfiniteTalk nodes that a node declaration cannot express.
//
// The sampler's seed: ComfyUI's front end gives every `seed` input a "control after generate" widget
// that starts at "randomize", so after a Cancel or a crash the next queue would be a new run and the
// finished windows on disk would not be reused. A new sampler starts at "fixed" (the user can still pick
// randomize). Only new nodes: a loaded workflow's saved choice is applied after this and is kept.
import { app } from "../../scripts/app.js";

const SEEDED_NODES = new Set(["InfiniteTalkSampler"]);
const CONTROL_WIDGET = "control_after_generate";

app.registerExtension({
  name: "InfiniteTalk.NodeDefaults",

  nodeCreated(node) {
    if (!SEEDED_NODES.has(node?.comfyClass ?? node?.type)) return;
    const control = node.widgets?.find((w) => w?.name === CONTROL_WIDGET);
    if (control && control.value === "randomize") control.value = "fixed";
  },
});
