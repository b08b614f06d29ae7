import { describe, expect, it } from "vitest";
import { occupancyText } from "./sim-table.js";

describe("occupancyText", () => {
  it("groups consecutive CPUs of the same rounded occupancy", () => {
    expect(occupancyText([0.0123, 1, 1, 0.99999, 0.034])).toBe("cpu0 1.2%, cpu1-3 100.0%, cpu4 3.4%");
    expect(occupancyText([0.5])).toBe("cpu0 50.0%");
    expect(occupancyText([])).toBe("");
  });
});
