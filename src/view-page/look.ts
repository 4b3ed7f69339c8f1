/**
 * The colours, opacities and widths the picture draws with, in one place:
 * cytoscape's style (graph.ts) and the far picture's canvas (far.ts) both
 * read them, so the picture looks the same on either side of the readable zoom.
 */
export const LOOK = {
  boxFill: "#ffffff",
  hostFill: "#f4f4f4",
  busFill: "#eeeeee",
  /** A bus's border, and a device's when no instance serves it. */
  grey: "#888",
  deferredFill: "#ffd8a8",
  failedFill: "#ffc9c9",
  /** A device not added: the whole box. */
  absentOpacity: 0.45,
  /** An instance not registered: its fill only. */
  unregisteredOpacity: 0.35,
  /** The outline of a function where ACS does not isolate. */
  acs: "#d00000",
  groupOpacity: 0.75,
  groupBorder: "#555",
  /** A group owned by user space: a thick purple border. */
  userBorder: "#6a1b9a",
  userBorderWidth: 4,
  iommuWidth: 90,
  busWidth: 80,
  /** The halo of what the step changed. */
  changed: "#ff1f8f",
  changedOpacity: 0.55,
  /** The shade over what is selected. */
  chosenOpacity: 0.15,
} as const;
