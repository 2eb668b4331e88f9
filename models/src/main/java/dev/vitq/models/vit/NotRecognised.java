package dev.vitq.models.vit;

/** Why a graph is not a transformer encoder vitq recognises; {@link VitRecognizer#recognize} turns it into a reason. */
final class NotRecognised extends Exception {
  NotRecognised(String message) {
    super(message, null, false, false);
  }
}
