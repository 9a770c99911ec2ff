// Workflows saved before the sampler had its `speakers` choice link the two speaker masks to top-level inputs
// `speaker_1_mask` / `speaker_2_mask`. Where the host declares the choice as a DynamicCombo (ComfyUI 0.33+) the
// masks live inside it (`speakers.speaker_1_mask`, shown only for two_speakers). On load, a sampler whose saved
// masks are linked switches to two_speakers and its links move into the choice (the server would also accept them
// under their old names); a sampler with only the old empty mask slots stays single_speaker and loses them. Both
// run after the front end has finished configuring the node (it restores the saved inputs until then).
import { app } from "../../scripts/app.js";

const SAMPLER = "InfiniteTalkSampler";
const CHOICE = "speakers";
const TWO = "two_speakers";
const MASKS = ["speaker_1_mask", "speaker_2_mask"];

function showTwoSpeakers(node, info) {
  const choice = node.widgets?.find((w) => w?.name === CHOICE);
  if (!choice || !choice.options?.values?.includes?.(TWO)) return; // no DynamicCombo here: plain mask inputs
  // The saved node tells which masks were linked (some front ends set the inputs' links only after configure).
  const legacy = (info?.inputs ?? node.inputs ?? []).filter((i) => MASKS.includes(i?.name));
  if (!legacy.length) return;
  if (!legacy.some((i) => i.link != null)) {
    setTimeout(() => dropUnlinked(node), 0); // one speaker: the old empty mask slots go
    return;
  }
  choice.value = TWO; // the front end adds the option's inputs (speakers.speaker_1_mask, ...)
  setTimeout(() => moveLinks(node), 0); // once the graph's links are configured
}

function dropUnlinked(node) {
  for (const name of MASKS) {
    const slot = node.inputs?.findIndex((i) => i?.name === name && i.link == null) ?? -1;
    if (slot >= 0) node.removeInput(slot);
  }
  node.setDirtyCanvas?.(true, true);
}

// Each saved mask link moves to the same mask inside the choice; the old input goes.
function moveLinks(node) {
  const graph = node.graph ?? app.graph;
  for (const name of MASKS) {
    const slot = node.inputs?.findIndex((i) => i?.name === name) ?? -1;
    const target = node.inputs?.findIndex((i) => i?.name === `${CHOICE}.${name}`) ?? -1;
    if (slot < 0 || target < 0) continue;
    const links = graph?.links;
    const id = node.inputs[slot].link;
    const link = id == null ? null : links instanceof Map ? links.get(id) : links?.[id];
    const from = link && graph.getNodeById(link.origin_id);
    node.removeInput(slot);
    if (from) from.connect(link.origin_slot, node, node.inputs.findIndex((i) => i?.name === `${CHOICE}.${name}`));
  }
}

app.registerExtension({
  name: "InfiniteTalk.SpeakersChoice",

  // Every configure of a saved sampler (a loaded workflow, a pasted node, a tab the front end restores).
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData?.name !== SAMPLER) return;
    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function (info) {
      const result = onConfigure?.apply(this, arguments);
      showTwoSpeakers(this, info);
      return result;
    };
  },
});
