package dblink;

import ij.ImagePlus;

/**
 * The Python side of dblink, as seen from Java. When Fiji/ImageJ was started from Python
 * ({@code dblink fiji}, PyImageJ), Python registers an implementation (a JPype proxy) with
 * {@link DBlink_Reconstruct#setRuntime(DBlinkRuntime)} and the plugin calls it in-process.
 */
public interface DBlinkRuntime {
    /** The dblink version of the Python package. */
    String version();

    /**
     * Run a reconstruction.
     *
     * @param optionsJson the plugin's options as a flat JSON object of strings (keys as in the
     *                    macro options: table, model, pixel_size, frames_per_step, window, stride,
     *                    roi, camera_pixel, device, exposure, skip_confidence, save)
     * @return the calibrated hyperstack (C = reconstruction [+ confidence], T = steps)
     */
    ImagePlus reconstruct(String optionsJson);
}
