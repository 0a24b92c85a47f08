/** Drop an image or pick one (PNG, JPEG or DICOM; DICOM files often have no extension, so none is required). */
import { useState } from 'preact/hooks';

export function FilePicker(props: { onFile: (file: File) => void; disabled: boolean }) {
  const [over, setOver] = useState(false);
  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setOver(false);
    const file = event.dataTransfer?.files[0];
    if (file && !props.disabled) props.onFile(file);
  };
  return (
    <div
      class={`dropzone ${over ? 'over' : ''}`}
      onDragOver={(event) => {
        event.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={onDrop}
    >
      <label for="file-input">Drop a chest X-ray here, or choose a file (PNG, JPEG or DICOM)</label>
      <input
        id="file-input"
        type="file"
        disabled={props.disabled}
        onChange={(event) => {
          const file = (event.currentTarget as HTMLInputElement).files?.[0];
          if (file) props.onFile(file);
        }}
      />
    </div>
  );
}
