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
     * Before a long run: load the model (fails fast on a bad name or file) and resolve
     * {@code stride=auto} by the device.
     *
     * @param optionsJson as for {@link #reconstruct(String)}
     * @return a flat JSON object: model, pixel_size_nm, frames_per_step, window, device, stride
     */
    String prepare(String optionsJson);

    /**
     * Run a reconstruction.
     *
     * @param optionsJson the plugin's options as a flat JSON object of strings, keyed by the macro
     *                    keys of {@link DBlink_Reconstruct#KEYS} (each reconstruction option is
     *                    defined once, in Python's dblink.options; a test checks the two agree)
     * @return the calibrated hyperstack (C = reconstruction [+ confidence], T = steps)
     */
    ImagePlus reconstruct(String optionsJson);
}
